"""A throwaway database for a benchmark: a SQLite file, or a new database on the
PostgreSQL server of a given URL, dropped afterwards."""

import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa

from persistence.settings import normalize_database_url


@asynccontextmanager
async def scratch_database(postgres_url: str | None) -> AsyncIterator[str]:
    """The URL of an empty database, SQLite unless a PostgreSQL server URL is given."""
    if postgres_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return

    import asyncpg

    server = sa.make_url(normalize_database_url(postgres_url))
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"songbook_bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
