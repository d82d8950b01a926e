"""The Starlette application: /graphql for queries, mutations and subscriptions, and the
probes /healthz and /readyz."""

import contextlib
import gc
from collections.abc import AsyncIterator, Mapping
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from graph.core.settings import Settings
from graph.schema import schema
from graph.server.auth import Authenticator
from graph.server.documents import DocumentPolicy, PersistedQueries, TrustedDocuments
from graph.server.headers import SecurityHeaders
from graph.server.health import Readiness, liveness
from graph.server.ide import GraphiQLPage
from graph.server.metrics import MetricsEndpoint, watch_database
from graph.server.tracing import from_environment, tracing_middleware
from graph.server.view import SongbookGraphQL
from persistence.database import Database
from persistence.events import JobEvents
from persistence.migrate import head_revision

# Key of the lifespan state (ASGI's way for an app to hand its server something) holding
# the coroutine function a server calls when it starts shutting down, before it closes
# connections: it closes every WebSocket with 1001, going away (graph/server/serving.py).
GOING_AWAY = "songbook.going_away"


class SongbookApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so its 500s carry the headers too.
        return SecurityHeaders(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The app configured by `settings` (default: the environment), over `db` if given,
    tracing to `tracer_provider` (default: as OTEL_* variables say, graph/server/tracing.py)."""
    settings = settings or Settings.load()
    db = db or Database(settings.database)
    traced = tracing_middleware(db, tracer_provider or from_environment())
    events = JobEvents.of(db)
    trusted = (
        TrustedDocuments.load(settings.trusted_documents) if settings.trusted_documents else None
    )
    store = PersistedQueries(db, settings.apq_max_documents, settings.apq_cache_size)
    graphiql = GraphiQLPage.build(settings.graphiql_assets) if settings.graphiql_on else None
    authenticator = Authenticator(settings, db)
    watch_database(db, metrics=settings.metrics, slow_seconds=settings.slow_statement_ms / 1000)
    view = SongbookGraphQL(
        schema,
        db=db,
        settings=settings,
        events=events,
        documents=DocumentPolicy(store, trusted),
        authenticator=authenticator,
        graphiql=graphiql,
        # Pages on other origins may open the subscription socket on the same terms as CORS.
        allowed_origins=settings.cors_origins,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        # Hear job changes committed by any process on the database (PostgreSQL).
        await events.start()
        # Know which replicas answer and keep up before the first query is routed.
        await db.replicas.start(head_revision())
        # What startup built (the schema, the mappers, the imported modules) lives as long
        # as the process: moved out of the collector's reach, its full passes stay short,
        # and so do the pauses they add to the slowest requests.
        gc.freeze()
        try:
            yield {GOING_AWAY: view.go_away}
        finally:
            await db.replicas.stop()
            await events.stop()
            await db.dispose()

    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    app = SongbookApp(
        routes=[
            Route("/", home),
            Route("/healthz", liveness),
            Route("/readyz", Readiness(db).endpoint),
            *(
                [Route("/metrics", MetricsEndpoint(settings, db, authenticator).endpoint)]
                if settings.metrics
                else []
            ),
            # Every method reaches the view, which answers all but GET and POST alike:
            # 405, Allow: GET, POST, and a GraphQL error body.
            Route("/graphql", view),
            *(
                [Route("/graphql/assets/{name}", graphiql.asset, methods=["GET", "HEAD"])]
                if graphiql is not None
                else []
            ),
            WebSocketRoute("/graphql", view),
        ],
        lifespan=lifespan,
        middleware=[*traced, *cors_middleware(settings.cors_origins)],
    )
    # The compiled read path (None when SONGBOOK_COMPILED is off), for those who watch it.
    app.state.planner = view.planner
    return app


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """CORS for single-page apps served from the configured origins; none by default."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            # Clients add their own headers (Apollo's client name, tracing, auth): the
            # origin is what is vetted, not the header list.
            allow_headers=["*"],
            max_age=600,
        )
    ]
