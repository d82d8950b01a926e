"""Alembic environment: async, URL from the configuration or DATABASE_URL, one lock.

Several Songbook processes may start at once against one database and all try to migrate.
The whole upgrade runs in one transaction that first takes a lock (a PostgreSQL advisory
lock, SQLite's exclusive lock), so the first process migrates and the others then find the
database at head.
"""

import asyncio
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.database import open_sqlite
from persistence.models import Base
from persistence.settings import DatabaseSettings, normalize_database_url

# Any fixed number will do; it names Songbook's migration lock among advisory locks.
MIGRATION_LOCK_KEY = 7_201_946_105

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return normalize_database_url(url) if url else DatabaseSettings.load().url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        # SQLite's DDL is transactional once the driver stops managing transactions (below).
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_migrations_online() -> None:
    url = database_url()
    # Connections open as the server's own do: connecting to PostgreSQL gives up in time
    # (statements have no limit: a migration may rightly take long), and a SQLite file
    # that cannot be opened leaves no thread behind.
    connect_args: dict[str, Any] = {}
    backend = sa.make_url(url).get_backend_name()
    if backend == "postgresql":
        connect_args = {"timeout": DatabaseSettings.load().connect_timeout}
    elif backend == "sqlite":
        connect_args = {"async_creator_fn": open_sqlite}
    engine = create_async_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _: Any) -> None:
            # Own the transaction (below) so DDL is transactional and the lock is held.
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout = 30000")

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")

    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        do_run_migrations(existing)
    else:
        asyncio.run(run_migrations_online())
