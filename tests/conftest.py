"""Fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured),
emptied after every test, and an HTTP client driving the real ASGI app."""

import asyncio
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
