"""Subscriptions over WebSocket: Strawberry's protocol handlers, fenced.

Strawberry 0.341 (pinned in pyproject.toml) offers no documented hook for what a
WebSocket request needs here, so this module alone overrides handler internals:
- Its handlers read `payload["query"]` and drop `payload["extensions"]`; a persisted
  query sent by hash alone has no query and lives in its extensions. The handlers below
  hand both on, so the schema's DocumentResolution extension (graph/core/documents.py)
  resolves WebSocket documents exactly as it does HTTP ones.
- Frames must be text: graphql-ws clients (GraphiQL's among them) only parse text frames,
  and orjson's bytes would otherwise go out as binary ones.
- Its handlers index into whatever JSON arrives: `[1,2]`, `"x"` or a subscribe whose
  payload is not an object raised out of the handler. Each message is checked first; a
  malformed one gets graphql-transport-ws's 4400 close (the legacy protocol, which has
  none, drops it as Strawberry drops invalid JSON there).
- Past SONGBOOK_WS_MAX_SUBSCRIPTIONS, Strawberry refuses a subscribe with an error that
  has no code; here it carries TOO_MANY_SUBSCRIPTIONS.
- A connection lives only as long as its token: IdentityWatch closes it (4403) once the
  token expires or is revoked; one whose token cannot be checked because the database is
  away is closed with 1013 (try again later), not refused.
The view passes the limits themselves (graph/server/view.py); uvicorn closes a message
larger than SONGBOOK_MAX_BODY_BYTES with 1009 (graph/server/cli.py).

`OpenSockets` needs no internals: it watches each connection's ASGI messages, so a server
going away can close every socket with 1001 (going away) rather than uvicorn's 1012.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import GraphQLError
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage

from graph.core.context import Context
from graph.core.documents import REQUEST_EXTENSIONS
from graph.core.metrics import WEBSOCKETS
from persistence.errors import DatabaseTimeout, DatabaseUnavailable

if TYPE_CHECKING:
    from graph.server.auth import Authenticator
    from graph.server.view import SongbookGraphQL

# How often a connection's token is checked again: with the token cache (at most 10 s
# between lookups) and JWT leeway (5 s), a revoked or expired token ends it within 10 s.
IDENTITY_CHECK_SECONDS = 2.0
# graphql-transport-ws: the server refuses the connection's credentials.
FORBIDDEN_CLOSE = 4403
# RFC 6455's "Try Again Later": the token could not be checked while the database is away.
TRY_AGAIN_LATER_CLOSE = 1013


class IdentityWatch:
    """Closes a connection (4403) once the token it was opened with expires or is revoked,
    which ends every subscription on it; clients reconnect with a fresh token."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    def start(self, view: Any, context: Context, close: Any) -> None:
        """Watch the token a connection was just acknowledged with (unless anonymous)."""
        if context.identity.is_anonymous or self.task is not None:
            return
        authenticator = cast("SongbookGraphQL", view).authenticator
        self.task = asyncio.create_task(self._watch(authenticator, context, close))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    @staticmethod
    async def _watch(authenticator: "Authenticator", context: Context, close: Any) -> None:
        while True:
            await asyncio.sleep(IDENTITY_CHECK_SECONDS)
            try:
                valid = await authenticator.still_valid(context.identity)
            except DatabaseUnavailable:
                # Unknown for now: the events bus tells subscribers of the outage.
                continue
            if not valid:
                with contextlib.suppress(Exception):
                    await close(code=FORBIDDEN_CLOSE, reason="Forbidden")
                return


# How long a client may take to send connection_init before it is closed with 4408.
CONNECTION_INIT_WAIT = timedelta(seconds=10)
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
# The types a subscribe (or start) payload's keys must have when present and not null.
_PAYLOAD_TYPES: dict[str, type] = {
    "query": str,
    "operationName": str,
    "variables": dict,
    "extensions": dict,
}


def _malformed(message: object, operations: tuple[str, ...]) -> str | None:
    """Why `message` breaks the protocol (graphql-ws's PROTOCOL.md), or None. The
    `operations` are the message types that carry an operation's id."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "A message must be a JSON object with a string type"
    kind = message["type"]
    if kind not in operations:
        return None
    if not isinstance(message.get("id"), str) or not message["id"]:
        return f"A {kind} message needs an id string"
    if kind not in ("subscribe", "start"):
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"A {kind} message needs a payload object"
    for key, expected in _PAYLOAD_TYPES.items():
        if payload.get(key) is not None and not isinstance(payload[key], expected):
            return f"The payload's {key} must be a {'string' if expected is str else 'object'}"
    return None


def _too_many(limit: int) -> GraphQLError:
    return GraphQLError(
        f"This connection already runs {limit} operations, the most it may: complete one "
        "before subscribing again",
        extensions={"code": TOO_MANY_SUBSCRIPTIONS, "allowed": limit},
    )


async def _try_again_later(websocket: Any) -> None:
    """Close a connection whose token could not be checked: not a refusal of the token
    (4403), so clients retry instead of asking for new credentials."""
    await websocket.close(code=TRY_AGAIN_LATER_CLOSE, reason="The database is unavailable")


def _with_query(payload: Any) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The payload with a `query` key (None when sent by hash alone), and its extensions."""
    payload = dict(payload or {})
    payload.setdefault("query", None)
    extensions = payload.get("extensions")
    return payload, extensions if isinstance(extensions, Mapping) else None


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends every message as a text frame."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (GraphiQL, graphql-ws clients, Apollo, urql)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extensions: dict[str, Mapping[str, Any] | None] = {}
        self._watch = IdentityWatch()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except (DatabaseUnavailable, DatabaseTimeout):
            await _try_again_later(self.websocket)
            return
        if self.connection_acknowledged:
            self._watch.start(self.view, self.context, self.websocket.close)

    async def shutdown(self) -> None:
        await self._watch.stop()
        await super().shutdown()

    async def handle_message(self, message: Message) -> None:
        reason = _malformed(message, ("subscribe", "complete"))
        if reason is not None:
            await self.handle_invalid_message(reason)
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            limit is not None
            and self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = _too_many(limit).formatted
            await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
            return
        payload, extensions = _with_query(message.get("payload"))
        if message["id"] not in self.operations:
            self._extensions[message["id"]] = extensions
        await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": payload}))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # Runs in the operation's own task: the variable is set for this operation only.
        REQUEST_EXTENSIONS.set(self._extensions.pop(operation.id, None))
        await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The older subscriptions-transport-ws protocol, held to the same connection rules as
    graphql-transport-ws, which Strawberry's handler lacks: connection_init within 10 s
    (else 4408), once (else 4429), and a refused token closes with 4403 (Strawberry's
    answer is connection_error and 1011, which clients retry as a server fault)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extensions: dict[str, Mapping[str, Any] | None] = {}
        self._watch = IdentityWatch()
        self._init_received = False

    async def handle(self) -> None:
        waiting = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting

    async def _close_without_init(self) -> None:
        await asyncio.sleep(CONNECTION_INIT_WAIT.total_seconds())
        if not self._init_received:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        if self._init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self._init_received = True
        payload = message.get("payload")
        try:
            if payload is None or isinstance(payload, dict):
                # Decide the caller first, to refuse with 4403; the stock handler then asks
                # again (the token is cached by then) and acknowledges.
                self.context.connection_params = payload
                await self.view.on_ws_connect(self.context)
            await super().handle_connection_init(message)
        except ConnectionRejectionError:
            await self.websocket.close(code=FORBIDDEN_CLOSE, reason="Forbidden")
            return
        except (DatabaseUnavailable, DatabaseTimeout):
            await _try_again_later(self.websocket)
            return
        if self.connection_acknowledged:
            self._watch.start(self.view, self.context, self.websocket.close)

    async def cleanup(self) -> None:
        await self._watch.stop()
        await super().cleanup()

    async def handle_message(self, message: OperationMessage) -> None:
        if _malformed(message, ("start", "stop")) is None:
            await super().handle_message(message)

    async def handle_start(self, message: StartMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            limit is not None
            and self.connection_acknowledged
            and message["id"] not in self.tasks
            and len(self.tasks) >= limit
        ):
            # The legacy protocol's error payload is one error, not a list.
            error = _too_many(limit).formatted
            await self.send_message({"id": message["id"], "type": "error", "payload": error})
            return
        payload, extensions = _with_query(message.get("payload"))
        self._extensions[message["id"]] = extensions
        await super().handle_start(cast(StartMessage, {**message, "payload": payload}))

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        REQUEST_EXTENSIONS.set(self._extensions.pop(operation_id, None))
        await super().handle_async_results(operation_id, query, operation_name, variables)


GOING_AWAY = 1001


class _Socket:
    """One WebSocket connection's side of the ASGI conversation, as the app sends it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.accepted = False
        self.closed = False
        self.sent_going_away = False

    async def send(self, message: ASGIMessage) -> None:
        if self.sent_going_away:
            if message["type"] == "websocket.close":
                return  # already closed, with 1001
            # What Starlette turns into WebSocketDisconnect, which Strawberry expects.
            raise OSError("the server closed this WebSocket")
        if message["type"] == "websocket.accept":
            self.accepted = True
        elif message["type"] == "websocket.close":
            self.closed = True
        await self._send(message)

    async def go_away(self) -> None:
        if self.accepted and not self.closed and not self.sent_going_away:
            self.sent_going_away = True
            await self._send(
                {"type": "websocket.close", "code": GOING_AWAY, "reason": "Server shutting down"}
            )


class OpenSockets:
    """The WebSocket connections being served, so that shutting down can close them all
    with a proper close frame, 1001 (going away), before the server stops."""

    def __init__(self) -> None:
        self._open: set[_Socket] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.going_away = False

    async def serve(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if self.going_away:
            # Refused at the handshake (403): the server is on its way out.
            await send({"type": "websocket.close", "code": GOING_AWAY})
            return
        socket = _Socket(send)
        self._open.add(socket)
        self._all_closed.clear()
        try:
            with WEBSOCKETS.track_inprogress():
                await app(scope, receive, socket.send)
        finally:
            self._open.discard(socket)
            if not self._open:
                self._all_closed.set()

    async def close_all(self, wait: float = 1.0) -> None:
        """Close every socket with 1001, then give the clients `wait` seconds to answer
        the close frame (their handlers end when they do)."""
        self.going_away = True
        for socket in list(self._open):
            # One failing peer must not keep the others open.
            with contextlib.suppress(Exception):
                await socket.go_away()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._all_closed.wait()
