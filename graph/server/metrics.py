"""`GET /metrics` (Prometheus' text format) and what feeds it from outside GraphQL.

- Statements: SQLAlchemy's cursor events time each statement on the engine.
- The pool: its checkout and checkin events set the in use / idle / overflow gauges.
- Jobs by status: counted when `/metrics` is scraped, at most every JOBS_EVERY seconds,
  whatever the scrape interval or the number of scrapers.

In production the endpoint asks for an admin's token unless SONGBOOK_METRICS_PUBLIC is on;
SONGBOOK_METRICS=off leaves it out.
"""

import os
import time
import weakref
from typing import Any

import orjson
import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from starlette.requests import Request
from starlette.responses import Response

from graph.core.identity import Role, Unauthenticated
from graph.core.metrics import (
    JOBS,
    POOL_CHECKOUTS,
    POOL_CONNECTIONS,
    POOL_WAIT,
    REPLICA_IN_USE,
    REPLICA_LAG,
    STATEMENT_DURATION,
    statement_kind,
)
from graph.core.settings import Settings
from graph.server.auth import Authenticator
from graph.server.http import error_body
from graph.server.logs import log_slow_statement
from persistence.database import Database, TimedPool
from persistence.errors import DomainError
from persistence.models import Job, JobStatus

JOBS_EVERY = 5.0
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
_STARTED = "songbook_statement_started"
_watched: "weakref.WeakSet[Any]" = weakref.WeakSet()


def watch_database(db: Database, *, metrics: bool, slow_seconds: float) -> None:
    """Time every statement `db` runs, on the primary or a replica (for the metrics, and
    to log the slow ones), and follow the primary's pool; once per engine, however many
    apps share it."""
    for engine, role in db.engines():
        if engine.sync_engine not in _watched:
            _watched.add(engine.sync_engine)
            _time_statements(engine.sync_engine, role, metrics, slow_seconds)
            if metrics and role == "primary":
                _follow_pool(engine.sync_engine)


def _time_statements(engine: sa.Engine, role: str, metrics: bool, slow_seconds: float) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def started(connection: Any, *_: Any) -> None:
        connection.info.setdefault(_STARTED, []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def finished(connection: Any, _: Any, statement: str, *__: Any) -> None:
        starts = connection.info.get(_STARTED)
        if starts:
            elapsed = time.perf_counter() - starts.pop()
            if metrics:
                STATEMENT_DURATION.labels(statement_kind(statement), role).observe(elapsed)
            if elapsed >= slow_seconds:
                log_slow_statement(statement, elapsed)

    @event.listens_for(engine, "handle_error")
    def failed(context: Any) -> None:
        connection = context.connection
        if connection is not None and connection.info.get(_STARTED):
            connection.info[_STARTED].pop()


def _follow_pool(engine: sa.Engine) -> None:
    pool = engine.pool
    if isinstance(pool, TimedPool):
        pool.on_wait = POOL_WAIT.observe
    if not all(hasattr(pool, name) for name in ("checkedout", "checkedin", "overflow")):
        return

    def follow(*_: Any) -> None:
        POOL_CONNECTIONS.labels("in_use").set(pool.checkedout())  # type: ignore[attr-defined]
        POOL_CONNECTIONS.labels("idle").set(pool.checkedin())  # type: ignore[attr-defined]
        POOL_CONNECTIONS.labels("overflow").set(max(pool.overflow(), 0))  # type: ignore[attr-defined]

    @event.listens_for(pool, "checkout")
    def checked_out(*_: Any) -> None:
        POOL_CHECKOUTS.inc()
        follow()

    event.listen(pool, "checkin", follow)
    follow()


class MetricsEndpoint:
    def __init__(self, settings: Settings, db: Database, authenticator: Authenticator) -> None:
        self.settings = settings
        self.db = db
        self.authenticator = authenticator
        self.jobs_counted = float("-inf")

    async def endpoint(self, request: Request) -> Response:
        refusal = await self.refusal(request)
        if refusal is not None:
            return refusal
        await self.count_jobs()
        for replica in self.db.replicas.status():
            number = str(replica["replica"])
            REPLICA_IN_USE.labels(number).set(1 if replica["status"] == "ok" else 0)
            if replica["lagSeconds"] is not None:
                REPLICA_LAG.labels(number).set(replica["lagSeconds"])
        directory = os.environ.get(MULTIPROCESS_DIRECTORY)
        registry = REGISTRY
        if directory:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def refusal(self, request: Request) -> Response | None:
        if not self.settings.production or self.settings.metrics_public:
            return None
        header = request.headers.get("authorization")
        try:
            identity = None if header is None else await self.authenticator.identify(header)
        except (Unauthenticated, DomainError):
            identity = None
        if identity is not None and identity.role is Role.ADMIN:
            return None
        status, message = (
            (403, "Only admins may read the metrics")
            if identity is not None
            else (401, "Send an admin's token: Authorization: Bearer <token>")
        )
        code = "FORBIDDEN" if status == 403 else "UNAUTHENTICATED"
        return Response(
            orjson.dumps(error_body(message, code)),
            status_code=status,
            media_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="songbook"'} if status == 401 else None,
        )

    async def count_jobs(self) -> None:
        """Jobs by status, counted at most every JOBS_EVERY seconds; a database that does
        not answer leaves the last counts."""
        now = time.monotonic()
        if now - self.jobs_counted < JOBS_EVERY:
            return
        self.jobs_counted = now
        statement = sa.select(Job.status, sa.func.count()).group_by(Job.status)
        try:
            async with self.db.read_connection() as connection:
                counts = dict((await connection.execute(statement)).all())
        except DomainError:
            return
        for status in JobStatus:
            JOBS.labels(status.name).set(counts.get(status, 0))
