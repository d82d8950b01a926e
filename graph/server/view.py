"""The GraphQL endpoint: Strawberry's ASGI view with Songbook's context and HTTP rules.

On top of Strawberry's view: GraphQL over HTTP to the letter (graph/server/http.py),
errors outside GraphQL answered as GraphQL error bodies instead of plain text, and bodies
over SONGBOOK_MAX_BODY_BYTES refused (413) before they are read whole. Which
document a request runs is decided in the schema (graph/core/documents.py), the same way
for every transport; WebSocket handling is in graph/server/websocket.py.

Overrides of Strawberry internals (pinned at 0.341.2): `execute_single`, because the
stock one refuses a mutation over GET with 400 where the GraphQL-over-HTTP spec asks for
405, and would run a subscription over plain HTTP. Everything else here is a documented
hook (get_context, process_result, encode_json/decode_json, parse_json, the IDE hooks,
create_response, get_sub_response).
"""

import asyncio
import logging
import time
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graph.core import metrics
from graph.core.context import Context
from graph.core.documents import PERSISTED_QUERY_NOT_FOUND, DocumentRefused
from graph.core.identity import Identity, Role, Unauthenticated
from graph.core.metrics import RequestRecord
from graph.core.planner import Planner
from graph.core.settings import Settings
from graph.core.tracing import current_trace_id
from graph.server.auth import Authenticator
from graph.server.deadlines import within
from graph.server.documents import DocumentPolicy
from graph.server.http import (
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    HTTPError,
    error_body,
    negotiate,
)
from graph.server.ide import GraphiQLPage
from graph.server.logs import log_request
from graph.server.websocket import (
    CONNECTION_INIT_WAIT,
    LegacyWSHandler,
    OpenSockets,
    TextWebSocketAdapter,
    TransportWSHandler,
)
from persistence.database import Database
from persistence.errors import DatabaseTimeout, DatabaseUnavailable
from persistence.events import JobEvents
from persistence.replicas import parse_position

logger = logging.getLogger("songbook.graph")

# Keys of Request.state this view sets for the rest of one request's handling.
_MEDIA_TYPE = "graphql_media_type"
_SUB_RESPONSE = "graphql_sub_response"
_CONTEXT = "graphql_context"
_RECORD = "songbook_record"
UNAUTHENTICATED = "UNAUTHENTICATED"
# Failures that stop an operation for reasons of the server, not of the request, with the
# status they get (under application/graphql-response+json) when no data came of it.
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
_OUTAGE_STATUS = {DATABASE_UNAVAILABLE: 503, "TIMEOUT": 504}
TIMEOUT_MESSAGE = "The request took too long and was stopped"
# The header a client sends back a mutation's extensions.readAfter in, to read its writes.
READ_AFTER_HEADER = "songbook-read-after"
SHUTTING_DOWN_MESSAGE = "The server is shutting down; send the request again"


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the operation never ran: a parse, validation or variable-coercion failure.

    graphql-core reports failed variable coercion as a result without data whose errors
    have no path; a field error that nulls the whole result always has one.
    """
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _body_too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"The request body is larger than {limit} bytes, the limit")


def _body_limited(receive: Receive, limit: int) -> Receive:
    """`receive`, refusing (413) a body as soon as more than `limit` bytes of it have
    arrived: a chunked body announces no length, so it is counted as it streams, and
    never held whole."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _body_too_large(limit)
        return message

    return limited


def read_after(request: Request) -> int | None:
    """The write position a request must read (Songbook-Read-After), if it names one."""
    header = request.headers.get(READ_AFTER_HEADER)
    if header is None:
        return None
    position = parse_position(header)
    if position is None:
        raise HTTPError(
            400,
            "Songbook-Read-After must be a token from a mutation's extensions.readAfter",
        )
    return position


def error_codes(result: ExecutionResult) -> list[str]:
    """Each error's `extensions.code`, in order."""
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]


def _codes(result: ExecutionResult) -> set[str]:
    return set(error_codes(result))


def is_outage(result: ExecutionResult) -> bool:
    """Whether the operation produced nothing (no data, or only nulls at the root) because
    the database failed it or took too long: a service unavailable, not a client's mistake
    nor a partial answer."""
    codes = _codes(result)
    nothing = result.data is None or all(value is None for value in result.data.values())
    return nothing and bool(codes) and codes <= _OUTAGE_STATUS.keys()


class SongbookGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(
        self,
        schema: Any,
        *,
        db: Database,
        settings: Settings,
        events: JobEvents,
        documents: DocumentPolicy,
        authenticator: Authenticator,
        graphiql: GraphiQLPage | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            connection_init_wait_timeout=CONNECTION_INIT_WAIT,
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            **options,
        )
        self.db = db
        self.settings = settings
        self.events = events
        self.documents = documents
        self.authenticator = authenticator
        self.graphiql = graphiql
        self.sockets = OpenSockets()
        self.going_away = False
        self.planner = Planner(schema, settings) if settings.compiled else None
        self.operation_names = metrics.OperationNames(settings.metrics_max_operations)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        context = Context(
            request=request,
            db=self.db,
            settings=self.settings,
            events=self.events,
            documents=self.documents,
            record=getattr(request.state, _RECORD, None),
        )
        if isinstance(request, Request):
            # Found again if the request runs out of time, to stop its loaders too.
            setattr(request.state, _CONTEXT, context)
            context.may_use_replica = bool(self.db.replicas)
            context.read_after = read_after(request)
            context.identity = await self.identify(request)
        return context

    # --- Identity: a bearer token, or the anonymous role -------------------------------

    async def identify(self, request: Request) -> Identity:
        """The caller of an HTTP request; refused with 401 when its token is bad, or when it
        sends none and anonymous callers may do nothing (GraphiQL's page is still served)."""
        try:
            identity = await self.authenticator.identify(request.headers.get("authorization"))
        except Unauthenticated as error:
            raise HTTPError(
                401,
                error.message,
                code=UNAUTHENTICATED,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        except DatabaseUnavailable as error:
            logger.warning("Database unavailable: %s", error.reason)
            raise HTTPError(
                503, "The database is unavailable", code="DATABASE_UNAVAILABLE"
            ) from None
        except DatabaseTimeout as error:
            logger.warning("A token lookup ran out of time")
            raise HTTPError(504, error.message, code="TIMEOUT") from None
        page = self.should_render_graphql_ide(cast(BaseRequestProtocol, request))
        if identity.role is Role.NONE and not page:
            raise HTTPError(
                401,
                "Authentication required: send Authorization: Bearer <token>",
                code=UNAUTHENTICATED,
                headers={"WWW-Authenticate": 'Bearer realm="songbook"'},
            )
        return identity

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """A WebSocket's caller, from `Authorization` in connection_init's payload (or the
        upgrade request's header); refused with the protocol's 4403 when the token is bad,
        or missing where one is required. DatabaseUnavailable and DatabaseTimeout (a token
        that could not be looked up) are left to the handler, which says so with another
        close code."""
        params = context.connection_params or {}
        header = next(
            (v for k, v in params.items() if k.lower() == "authorization"),
            context.request.headers.get("authorization"),
        )
        if header is not None and not isinstance(header, str):
            raise ConnectionRejectionError()
        try:
            identity = await self.authenticator.identify(header)
        except Unauthenticated:
            raise ConnectionRejectionError() from None
        if identity.role is Role.NONE:
            raise ConnectionRejectionError()
        context.identity = identity
        acknowledged: UnsetType = UNSET  # connection_ack with no payload
        return acknowledged

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        # A body (or a variables/extensions parameter) must be an object; a batch is a list.
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPError(400, "The request body must be a JSON object")
        return parsed

    # --- HTTP: negotiation, errors as GraphQL bodies -------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.sockets.serve(super().__call__, scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        request = Request(scope=scope, receive=_body_limited(receive, limit))
        record = RequestRecord()
        setattr(request.state, _RECORD, record)
        started = time.perf_counter()
        try:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise _body_too_large(limit)
            response = await self.run_in_time(request)
        except asyncio.CancelledError:
            if not self.going_away:
                raise
            # The server stops waiting for requests past its shutdown grace: this one
            # gets an answer that says so rather than a dropped connection.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            response = self.error_response(
                request, HTTPError(503, SHUTTING_DOWN_MESSAGE, code="SHUTTING_DOWN")
            )
        except HTTPError as error:
            response = self.error_response(request, error)
        except HTTPException as error:
            headers = {"Allow": "GET, POST"} if error.status_code == 405 else None
            response = self.error_response(
                request, HTTPError(error.status_code, error.reason, headers=headers)
            )
        # Accept picks the media type (and GraphiQL's page): a shared cache must key on it.
        vary = response.headers.get("vary")
        response.headers["vary"] = f"{vary}, Accept" if vary else "Accept"
        self.observe(request, record, response, time.perf_counter() - started)
        await response(scope, receive, send)

    def observe(
        self, request: Request, record: RequestRecord, response: Response, seconds: float
    ) -> None:
        """Count a GraphQL request (GraphiQL's page is not one) in the metrics, and log
        its line."""
        if response.headers.get("content-type", "").startswith("text/html"):
            return
        log_request(request, record, response.status_code, seconds, current_trace_id())
        if not self.settings.metrics:
            return
        name = self.operation_names.label(record.operation_name)
        kind = record.operation_type or "unknown"
        if record.operation_type is None:
            outcome = "rejected"  # refused before any operation ran
        elif record.error_codes or response.status_code >= 400:
            outcome = "error"
        else:
            outcome = "success"
        metrics.REQUESTS.labels(name, kind, outcome).inc()
        metrics.REQUEST_DURATION.labels(name, kind).observe(seconds)
        for code in record.error_codes:
            metrics.ERRORS.labels(code).inc()

    async def go_away(self) -> None:
        """The server is shutting down: close every WebSocket with 1001 (going away)."""
        self.going_away = True
        await self.sockets.close_all()

    async def run_in_time(self, request: Request) -> Response:
        """Run the request, or end it with TIMEOUT once it has taken request_timeout: its
        operation and its loaders' batches are cancelled, which cancels their statements
        on the database server too."""
        try:
            return await within(self.settings.request_timeout, self.run(request))
        except TimeoutError:
            pass
        context: Context | None = getattr(request.state, _CONTEXT, None)
        if context is not None:
            context.loaders.cancel()
        logger.warning(
            "A request ran out of time (%gs) and was stopped", self.settings.request_timeout
        )
        media_type = getattr(request.state, _MEDIA_TYPE, None) or negotiate(
            request.headers.get("accept")
        )
        status = _OUTAGE_STATUS["TIMEOUT"] if media_type == GRAPHQL_RESPONSE_JSON else 200
        raise HTTPError(status, TIMEOUT_MESSAGE, code="TIMEOUT")

    def error_response(self, request: Request, error: HTTPError) -> Response:
        record: RequestRecord | None = getattr(request.state, _RECORD, None)
        if record is not None:
            record.error_codes = [error.code]
        # Refused before negotiation (a body too large): negotiated here.
        media_type = (
            getattr(request.state, _MEDIA_TYPE, None)
            or negotiate(request.headers.get("accept"))
            or JSON
        )
        return Response(
            self.encode_json(error_body(error.message, error.code)),
            status_code=error.status,
            headers={"content-type": CONTENT_TYPES[media_type], **error.headers},
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, Request):
            # Negotiated once; an unacceptable Accept is refused after GraphiQL had its chance.
            setattr(request.state, _MEDIA_TYPE, negotiate(request.headers.get("accept")))
            setattr(request.state, _SUB_RESPONSE, sub_response)
        return sub_response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Only browsers navigating to /graphql: a GET naming no operation, asking for HTML.
        params = request.query_params
        return (
            self.graphiql is not None
            and request.method == "GET"
            and params.get("query") is None
            and params.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        assert self.graphiql is not None
        return self.graphiql.render()

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if negotiate(request.headers.get("accept")) is None:
            raise HTTPError(
                406, f"Accept one of {GRAPHQL_RESPONSE_JSON} or {JSON} (or leave Accept out)"
            )
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != JSON:
                raise HTTPError(
                    415, f"POST a JSON body with Content-Type: {JSON}", headers={"Accept": JSON}
                )
        return await super().parse_http_body(request)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = Response(self.encode_json(response_data), status_code=200)
        # The sub-response carries the negotiated Content-Type and anything resolvers set.
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response_data = await super().process_result(request, result)
        media_type = getattr(request.state, _MEDIA_TYPE, None)
        sub_response: Response | None = getattr(request.state, _SUB_RESPONSE, None)
        if sub_response is None:
            return response_data
        sub_response.headers["content-type"] = CONTENT_TYPES[media_type or JSON]
        codes = error_codes(result)
        record: RequestRecord | None = getattr(request.state, _RECORD, None)
        if record is not None:
            record.error_codes = codes
        if isinstance(result, PreExecutionError) and PERSISTED_QUERY_NOT_FOUND in codes:
            # APQ's first round trip: every client retries on a 200, and no cache keeps it.
            sub_response.headers["cache-control"] = "private, no-cache, must-revalidate"
            response_data.pop("data", None)
        elif media_type == GRAPHQL_RESPONSE_JSON and (
            is_request_error(result) or is_outage(result)
        ):
            statuses = [_OUTAGE_STATUS[code] for code in codes if code in _OUTAGE_STATUS]
            sub_response.status_code = max(statuses, default=400)
            response_data.pop("data", None)
        return response_data

    # --- Execution: 405 for mutations over GET, no subscriptions over HTTP ---------------

    async def compiled(
        self, context: Context, request_data: GraphQLRequestData
    ) -> ExecutionResult | None:
        """The result the compiled read path answers with (graph/core/planner.py), or None
        when the request is Strawberry's: the planner's own, or a document that is not
        known yet (APQ's registration happens on Strawberry's path) or is refused."""
        assert self.planner is not None
        try:
            resolved = await self.documents.resolve(request_data.query, request_data.extensions)
        except DocumentRefused:
            return None
        if resolved.query is None or resolved.register_as is not None:
            return None
        return await self.planner.execute(
            context, resolved.query, request_data.operation_name, request_data.variables
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        result = await self.execute_once(request_adapter.method, context, request_data)
        if context.reads.role == "replica" and DATABASE_UNAVAILABLE in _codes(result):
            # The replica failed the query: it is skipped from now on, and the query (which
            # writes nothing) runs again on the primary, so the client never sees it.
            self.db.replicas.failed(context.reads, "a query failed on it")
            context.read_from_primary()
            result = await self.execute_once(request_adapter.method, context, request_data)
        if (
            context.record is not None
            and context.record.operation_type == OperationType.MUTATION.value
            and not is_request_error(result)
        ):
            await self.add_read_after(result)
        return result

    async def add_read_after(self, result: ExecutionResult) -> None:
        """Hand a mutation's client the primary's write position after its commits, to
        send back as Songbook-Read-After (PostgreSQL only: SQLite has no replicas)."""
        try:
            position = await self.db.write_position()
        except (DatabaseUnavailable, DatabaseTimeout):
            return  # the mutation's own answer says more than a missing token would
        if position is not None:
            result.extensions = {**(result.extensions or {}), "readAfter": position}

    async def execute_once(
        self, method: HTTPMethod, context: Context, request_data: GraphQLRequestData
    ) -> ExecutionResult:
        # Subscriptions are served over WebSocket only.
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if method == "GET" and not self.allow_queries_via_get:
            allowed -= {OperationType.QUERY}
        if self.planner is not None and OperationType.QUERY in allowed:
            compiled = await self.compiled(context, request_data)
            if compiled is not None:
                return compiled
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=None,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPError(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if method == "GET" and error.operation_type == OperationType.MUTATION:
                raise HTTPError(
                    405, "Mutations must be sent with POST", headers={"Allow": "POST"}
                ) from error
            if error.operation_type == OperationType.SUBSCRIPTION:
                raise HTTPError(
                    400,
                    "Subscriptions run over a WebSocket to /graphql "
                    "(graphql-transport-ws or graphql-ws), not over HTTP",
                ) from error
            raise HTTPError(400, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPError(400, "No GraphQL query found in the request") from error
