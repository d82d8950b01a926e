"""The GraphQL endpoint: Strawberry's ASGI view with Songbook's context and JSON."""

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from graph.context import Context
from persistence.database import Database


class SongbookGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, db: Database, **options: Any) -> None:
        super().__init__(schema, **options)
        self.db = db

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        return Context(request=request, response=response, db=self.db)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)
