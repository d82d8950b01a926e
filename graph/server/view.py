"""The GraphQL endpoint: Strawberry's ASGI view with Songbook's context, JSON and HTTP rules.

On top of Strawberry's view: GraphQL over HTTP to the letter (see graph/server/http.py), errors
outside GraphQL answered as GraphQL error bodies instead of plain text, and the document
policy of graph/server/documents.py (automatic persisted queries, trusted documents) on HTTP and
WebSocket alike.
"""

from collections.abc import Mapping
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyErrorMessage
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from graph.core.context import Context
from graph.server.documents import DocumentPolicy, DocumentRefused
from graph.server.http import (
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    HTTPError,
    error_body,
    negotiate,
)
from graph.server.ide import GraphiQLPage
from persistence.database import Database

# Keys of Request.state this view sets for the rest of one request's handling.
_MEDIA_TYPE = "graphql_media_type"
_SUB_RESPONSE = "graphql_sub_response"


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the operation never ran: a parse, validation or variable-coercion failure.

    graphql-core reports failed variable coercion as a result without data whose errors
    have no path; a field error that nulls the whole result always has one.
    """
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _refusal_error(refused: DocumentRefused) -> GraphQLError:
    return GraphQLError(refused.message, extensions={"code": refused.code})


class _Refused(PreExecutionError):
    """A request whose document policy refused it; `not_found` is APQ's retry signal."""

    def __init__(self, refused: DocumentRefused) -> None:
        super().__init__(data=None, errors=[_refusal_error(refused)])
        self.not_found = refused.not_found
        self.status = refused.status


async def _resolve_ws(view: Any, payload: Any) -> str | None:
    resolved = await cast("SongbookGraphQL", view).documents.resolve(
        payload.get("query"), payload.get("extensions")
    )
    return resolved.query


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends every message as a text frame: graphql-ws clients (GraphiQL's among them)
    only parse text frames, and orjson's bytes would otherwise go out as binary ones."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (GraphiQL, graphql-ws clients) under the document policy."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged or message["id"] in self.operations:
            # The protocol's own refusals (4401, 4409) come before any document is read.
            await super().handle_subscribe(message)
            return
        payload: Any = message.get("payload") or {}
        try:
            query = await _resolve_ws(self.view, payload)
        except DocumentRefused as refused:
            error = _refusal_error(refused).formatted
            await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error]))
            return
        await super().handle_subscribe(
            cast(SubscribeMessage, {**message, "payload": {**payload, "query": query}})
        )


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The older subscriptions-transport-ws protocol, under the same policy."""

    async def handle_start(self, message: StartMessage) -> None:
        payload: Any = message.get("payload") or {}
        try:
            query = await _resolve_ws(self.view, payload)
        except DocumentRefused as refused:
            error = _refusal_error(refused).formatted
            await self.send_message(
                LegacyErrorMessage(type="error", id=message["id"], payload=error)
            )
            return
        await super().handle_start(
            cast(StartMessage, {**message, "payload": {**payload, "query": query}})
        )


class SongbookGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = TextWebSocketAdapter
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        schema: Any,
        db: Database,
        *,
        documents: DocumentPolicy,
        graphiql: GraphiQLPage | None = None,
        **options: Any,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, **options)
        self.db = db
        self.documents = documents
        self.graphiql = graphiql

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(request=request, response=response, db=self.db)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    # --- HTTP: negotiation, errors as GraphQL bodies -------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
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
        await response(scope, receive, send)

    def error_response(self, request: Request, error: HTTPError) -> Response:
        media_type = getattr(request.state, _MEDIA_TYPE, None) or JSON
        return Response(
            self.encode_json(error_body(error.message, error.code)),
            status_code=error.status,
            headers={"content-type": CONTENT_TYPES[media_type], **error.headers},
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, Request):
            # Unacceptable Accept headers are refused later, after GraphiQL had its chance.
            media_type = negotiate(request.headers.get("accept"))
            setattr(request.state, _MEDIA_TYPE, media_type)
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
        return HTMLResponse(self.graphiql.html)

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
            data = self.parse_json(await request.get_body())
            if not isinstance(data, dict | list):
                raise HTTPError(400, "The request body must be a JSON object")
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
        if isinstance(result, _Refused) and result.not_found:
            # APQ's first round trip: every client retries on a 200, and no cache keeps it.
            sub_response.headers["cache-control"] = "private, no-cache, must-revalidate"
            response_data.pop("data", None)
        elif media_type == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            sub_response.status_code = result.status if isinstance(result, _Refused) else 400
            response_data.pop("data", None)
        return response_data

    # --- Execution: the document policy, and 405 for mutations over GET ------------------

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            resolved = await self.documents.resolve(request_data.query, request_data.extensions)
        except DocumentRefused as refused:
            return _Refused(refused)
        # Subscriptions are served over WebSocket only.
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            result = await self.schema.execute(
                resolved.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPError(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if request_adapter.method == "GET" and error.operation_type == OperationType.MUTATION:
                raise HTTPError(
                    405, "Mutations must be sent with POST", headers={"Allow": "POST"}
                ) from error
            if error.operation_type == OperationType.SUBSCRIPTION:
                raise HTTPError(
                    400,
                    "Subscriptions run over a WebSocket to /graphql "
                    "(graphql-transport-ws or graphql-ws), not over HTTP",
                ) from error
            raise HTTPError(400, error.as_http_error_reason(request_adapter.method)) from error
        except MissingQueryError as error:
            raise HTTPError(400, "No GraphQL query found in the request") from error
        if not isinstance(result, PreExecutionError):
            await self.documents.register(resolved)
        return result
