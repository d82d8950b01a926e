"""The Starlette application: /graphql for queries, mutations and subscriptions."""

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute

from graph.schema import schema
from graph.settings import AppSettings
from graph.view import SongbookGraphQL
from persistence.database import Database


def create_app(settings: AppSettings | None = None, db: Database | None = None) -> Starlette:
    """The app configured by `settings` (default: the environment), over `db` if given."""
    settings = settings or AppSettings.from_env()
    db = db or Database(settings.database)
    view = SongbookGraphQL(schema, db=db)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await db.dispose()

    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/healthz", health),
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
        ],
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.settings = settings
    return app
