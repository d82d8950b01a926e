"""Fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured),
emptied after every test, and an HTTP client driving the real ASGI app."""

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from starlette.applications import Starlette

from graph.server.app import create_app
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base
from persistence.settings import DatabaseSettings, normalize_database_url

POSTGRES_URL = os.environ.get("SONGBOOK_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


class PostgresDatabases:
    """Makes and drops throwaway PostgreSQL databases on the configured server."""

    def __init__(self) -> None:
        assert POSTGRES_URL
        self.base = sa.make_url(normalize_database_url(POSTGRES_URL))
        self.created: list[str] = []

    def create(self) -> str:
        name = f"songbook_test_{uuid.uuid4().hex[:12]}"
        self.run([f'CREATE DATABASE "{name}"'])
        self.created.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        self.run([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.created])

    def run(self, statements: list[str]) -> None:
        """Run statements on the server's maintenance database (outside any event loop)."""
        import asyncpg

        async def run() -> None:
            connection = await asyncpg.connect(self._dsn("postgres"))
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(run())

    def _dsn(self, database: str) -> str:
        url = self.base.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not POSTGRES_URL:
        yield None
        return
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


def new_database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, postgres: PostgresDatabases | None
) -> str:
    """An empty database of `backend` that no other test uses."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "songbook.db"
        return f"sqlite+aiosqlite:///{path}"
    assert postgres is not None
    return postgres.create()


@pytest.fixture(scope="module")
def module_url(
    backend_name: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
) -> str:
    """A new, empty database of the backend under test, shared by one test module (for a
    server process the module's tests share)."""
    return new_database_url(backend_name, tmp_path_factory, postgres_databases)


@pytest.fixture
def empty_url(
    backend_name: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
) -> str:
    """A new, empty database of the backend under test."""
    return new_database_url(backend_name, tmp_path_factory, postgres_databases)


@pytest.fixture(scope="session", params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def migrated_url(
    backend_name: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
) -> str:
    url = new_database_url(backend_name, tmp_path_factory, postgres_databases)
    upgrade(url)
    return url


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    database = Database(DatabaseSettings(url=migrated_url))
    yield database
    async with database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
    await database.dispose()


@pytest.fixture
def app(db: Database) -> Starlette:
    return create_app(db=db)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous caller (an editor, as in development)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as c:
        yield c


@pytest.fixture
async def admin_client(app: Starlette, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A caller with an admin's API token: may do everything, and act for any worker."""
    from tests.auth import bearer, issue_token

    headers = bearer(await issue_token(db, "admin", name="test-admin"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://songbook.test", headers=headers
    ) as c:
        yield c


class StatementCounter:
    """Counts the SQL statements a database runs, leaving out transaction control."""

    _CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA)\b", re.I)

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self._CONTROL.match(statement):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


class RoundTripCounter(StatementCounter):
    """Counts every round trip to the database: statements and transaction control.

    SQLite's BEGIN is a statement we send (persistence/database.py); its COMMIT and ROLLBACK
    go through the driver, and count only when a transaction is open (otherwise sqlite3
    sends nothing). asyncpg's adapter sends BEGIN implicitly before a transaction's first
    statement, COMMIT and ROLLBACK through asyncpg's transaction object, and the pool's
    pre-ping (BEGIN, `;`, ROLLBACK outside AUTOCOMMIT): those are counted at the adapter
    (SQLAlchemy 2.1, asyncpg dialect). Statements asyncpg prepares on a connection for the
    first time cost one more round trip each; they are listed in `prepares`, apart, since
    which pooled connection serves a request is a matter of chance.
    """

    _CONTROL = re.compile(r"^\s*PRAGMA\b", re.I)

    def __init__(self) -> None:
        super().__init__()
        self.prepares: list[str] = []

    def control(self, name: str) -> None:
        self.statements.append(name)

    @property
    def transaction_control(self) -> list[str]:
        return [s for s in self.statements if s.split()[0].upper() in _TRANSACTION_WORDS]


_TRANSACTION_WORDS = {"BEGIN", "COMMIT", "ROLLBACK", "PING"}


@contextlib.contextmanager
def counting_round_trips(db: Database) -> Iterator[RoundTripCounter]:
    counter = RoundTripCounter()
    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    with contextlib.ExitStack() as undo:
        if db.dialect == "sqlite":
            undo.enter_context(_count_sqlite_ends(counter))
        else:
            undo.enter_context(_count_asyncpg_control(counter))
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", counter)


@contextlib.contextmanager
def _count_sqlite_ends(counter: RoundTripCounter) -> Iterator[None]:
    from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection as Adapter

    originals = {name: getattr(Adapter, name) for name in ("commit", "rollback")}

    def wrap(name: str) -> Any:
        def ended(self: Any) -> None:
            inner = self._connection._connection
            if inner is not None and inner.in_transaction:
                counter.control(name.upper())
            originals[name](self)

        return ended

    with pytest.MonkeyPatch.context() as patch:
        for name in originals:
            patch.setattr(Adapter, name, wrap(name))
        yield


@contextlib.contextmanager
def _count_asyncpg_control(counter: RoundTripCounter) -> Iterator[None]:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection as Adapter

    # The adapter's methods are untyped; Any keeps mypy's strict mode content.
    start: Any = Adapter._start_transaction
    finish: Any = Adapter._call_and_discard
    ping: Any = Adapter._async_ping
    prepare: Any = Adapter._prepare

    async def counted_start(self: Any) -> None:
        if self.isolation_level != "autocommit":
            counter.control("BEGIN")
        await start(self)

    async def counted_finish(self: Any, fn: Any) -> None:
        counter.control(fn.__name__.upper())  # the transaction's commit or rollback
        await finish(self, fn)

    async def counted_ping(self: Any) -> None:
        if self._transaction is None and self.isolation_level != "autocommit":
            counter.control("BEGIN")
            counter.control("PING")
            counter.control("ROLLBACK")
        else:
            counter.control("PING")
        await ping(self)

    async def counted_prepare(self: Any, operation: str, invalidate_timestamp: Any) -> Any:
        cache = self._prepared_statement_cache
        if cache is None or operation not in cache:
            counter.prepares.append(operation)
        return await prepare(self, operation, invalidate_timestamp)

    replaced = {
        "_start_transaction": counted_start,
        "_call_and_discard": counted_finish,
        "_async_ping": counted_ping,
        "_prepare": counted_prepare,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, wrapper in replaced.items():
            patch.setattr(Adapter, name, wrapper)
        yield


@pytest.fixture
def round_trips(db: Database) -> Iterator[RoundTripCounter]:
    """Every round trip `db` makes while the test runs (see RoundTripCounter)."""
    with counting_round_trips(db) as counter:
        yield counter


@pytest.fixture
def statements(db: Database) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(db.engine.sync_engine, "before_cursor_execute", counter)


class GraphQLClient:
    """Posts operations as a browser app would and returns the decoded response."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest.fixture
def admin_gql(admin_client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(admin_client)
