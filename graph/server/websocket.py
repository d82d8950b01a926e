"""Subscriptions over WebSocket: Strawberry's protocol handlers, fenced.

Strawberry 0.341 (pinned in pyproject.toml) offers no documented hook for two things a
WebSocket request needs here, so this module alone overrides handler internals:
- Its handlers read `payload["query"]` and drop `payload["extensions"]`; a persisted
  query sent by hash alone has no query and lives in its extensions. The handlers below
  hand both on, so the schema's DocumentResolution extension (graph/core/documents.py)
  resolves WebSocket documents exactly as it does HTTP ones.
- Frames must be text: graphql-ws clients (GraphiQL's among them) only parse text frames,
  and orjson's bytes would otherwise go out as binary ones.

`OpenSockets` needs no internals: it watches each connection's ASGI messages, so a server
going away can close every socket with 1001 (going away) rather than uvicorn's 1012.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import orjson
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from graph.core.context import Context
from graph.core.documents import REQUEST_EXTENSIONS


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

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload, extensions = _with_query(message.get("payload"))
        if message["id"] not in self.operations:
            self._extensions[message["id"]] = extensions
        await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": payload}))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # Runs in the operation's own task: the variable is set for this operation only.
        REQUEST_EXTENSIONS.set(self._extensions.pop(operation.id, None))
        await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The older subscriptions-transport-ws protocol."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extensions: dict[str, Mapping[str, Any] | None] = {}

    async def handle_start(self, message: StartMessage) -> None:
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

    async def send(self, message: Message) -> None:
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
