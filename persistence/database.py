"""The database handle: engine, sessions and the unit of work."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from persistence.errors import Conflict, DatabaseUnavailable, ValidationError
from persistence.models import Base
from persistence.settings import DatabaseSettings

# Execution option that makes a SQLite transaction take the write lock when it begins, so a
# unit of work that reads and then writes never fails on upgrading its lock.
_SQLITE_IMMEDIATE = "songbook_sqlite_immediate"

_SQLITE_UNAVAILABLE = re.compile(
    r"unable to open database file|database is locked|disk I/O error", re.IGNORECASE
)
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


def _sqlite_unique_constraint(columns_text: str) -> str | None:
    """Name the unique constraint or index that SQLite reports only by its columns."""
    pairs = [column.strip().split(".") for column in columns_text.split(",")]
    table_name = pairs[0][0]
    columns = {column for _, column in pairs}
    table = Base.metadata.tables.get(table_name)
    if table is None:
        return None
    for constraint in table.constraints:
        if (
            isinstance(constraint, sa.UniqueConstraint)
            and {c.name for c in constraint.columns} == columns
        ):
            return str(constraint.name)
    for index in table.indexes:
        if index.unique and {c.name for c in index.columns} == columns:
            return str(index.name)
    return None


def constraint_name(error: sa.exc.IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke, on any supported dialect."""
    cause = error.orig
    # asyncpg reports the constraint by name; the DB-API wrapper keeps it as the cause.
    for candidate in (cause, getattr(cause, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    text = str(cause)
    if match := _SQLITE_UNIQUE.search(text):
        return _sqlite_unique_constraint(match.group("columns"))
    if match := _SQLITE_CHECK.search(text):
        return match.group("name")
    return None


def translate_integrity_error(error: sa.exc.IntegrityError) -> Conflict | ValidationError:
    name = constraint_name(error) or "unknown"
    if name.startswith("ck_"):
        return ValidationError(name, f"A value breaks the rule {name}")
    if name.startswith("fk_"):
        return ValidationError(name, "A referenced record does not exist")
    return Conflict(name, f"A record with the same value already exists ({name})")


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the database cannot be reached, rather than a bad statement."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
            orig = error.orig
            if orig is not None and _SQLITE_UNAVAILABLE.search(str(orig)):
                return True
            return "sqlite" not in type(orig).__module__
    return isinstance(error, OSError | ConnectionError | TimeoutError)


class Database:
    """One per process: the engine, its pool, and the units of work built on them."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = _create_engine(settings)
        # SQLite has one write lock and its busy handler polls for it unfairly: concurrent
        # writers of this process queue here, in order, instead of starving each other.
        self._write_turn: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if settings.is_sqlite else contextlib.nullcontext()
        )
        # Copied into every session's `info`: what session event hooks need to find (the
        # job-event bus registers itself here), without this module knowing of them.
        self.session_info: dict[str, Any] = {}
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, info=self.session_info
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session outside any unit of work: for reads, which need no commit. Writes made
        through it are rolled back when the block ends; use `transaction` to keep them.
        Never share one between concurrent tasks."""
        try:
            async with self._sessions() as session:
                yield session
        except BaseException as error:
            if is_unavailable(error) and not isinstance(error, DatabaseUnavailable):
                raise DatabaseUnavailable() from error
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: commits when the block succeeds, rolls back when it raises.

        Integrity errors come out as domain errors (Conflict, ValidationError) and lost
        connections as DatabaseUnavailable.
        """
        try:
            async with self._write_turn, self._sessions() as session, session.begin():
                if self.dialect == "sqlite":
                    await session.connection(execution_options={_SQLITE_IMMEDIATE: True})
                yield session
        except sa.exc.IntegrityError as error:
            raise translate_integrity_error(error) from error
        except BaseException as error:
            if is_unavailable(error) and not isinstance(error, DatabaseUnavailable):
                raise DatabaseUnavailable() from error
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()


def _create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if not settings.is_sqlite:
        return create_async_engine(
            settings.url,
            echo=settings.echo,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_pre_ping=settings.pool_pre_ping,
            pool_recycle=settings.pool_recycle,
        )

    engine = create_async_engine(settings.url, echo=settings.echo)
    busy_timeout = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _configure_sqlite(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_sqlite(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
