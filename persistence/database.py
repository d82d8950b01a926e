"""The database handle: engine, sessions and the unit of work."""

import asyncio
import contextlib
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from persistence.errors import (
    Conflict,
    DatabaseTimeout,
    DatabaseUnavailable,
    DomainError,
    ValidationError,
)
from persistence.models import Base
from persistence.replicas import Replicas
from persistence.settings import DatabaseSettings

# Execution option that makes a SQLite transaction take the write lock when it begins, so a
# unit of work that reads and then writes never fails on upgrading its lock.
_SQLITE_IMMEDIATE = "songbook_sqlite_immediate"
# Execution option of read sessions on SQLite: no BEGIN, so each statement is a transaction
# of its own and nothing is left to commit or roll back.
_SQLITE_NO_BEGIN = "songbook_sqlite_no_begin"

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


# SQLSTATEs that mean the database cannot serve this process now, not that a statement was
# wrong, each with the reason a log line gives: whole classes, then single codes.
_UNAVAILABLE_CLASSES = {
    "08": "the connection failed",
    "28": "the database refused the credentials",
    "53": "the database is out of resources",
}
_UNAVAILABLE_SQLSTATES = {
    "53300": "the database has too many connections",
    "57P01": "the database server ended the connection",
    "57P02": "the database server crashed",
    "57P03": "the database server is starting up or shutting down",
    "57P04": "the database was dropped",
    "57P05": "the database server ended an idle connection",
    "3D000": "the database does not exist",
    # How PostgreSQL refuses connections to a database with ALLOW_CONNECTIONS false.
    "55000": "the database is not accepting connections",
    "55006": "the database is in use by other sessions",
}
# A statement cancelled by the server: by statement_timeout, or at our request.
_QUERY_CANCELED = "57014"
# "Data exception": a value the database cannot take, whoever sent it.
_DATA_EXCEPTION_CLASS = "22"


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error, wrapped or not (asyncpg's errors carry one)."""
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def _os_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(error, TimeoutError):
        return "the database did not answer in time"
    if isinstance(error, ConnectionError):
        return "the connection was lost"
    # strerror is the system's words alone, where str(error) may name the host and port.
    if error.strerror:
        return f"the database server is unreachable ({error.strerror})"
    return "the database server is unreachable"


def unavailable_reason(error: BaseException) -> str | None:
    """Why `error` means the database cannot be used, in words fit for a log line (no
    host, name, SQL or value); None when the error is the statement's own."""
    if isinstance(error, DatabaseUnavailable):
        return error.reason
    if isinstance(error, sa.exc.TimeoutError):
        return "no database connection came free in time"
    code = _sqlstate(error)
    if code is not None and (
        reason := _UNAVAILABLE_SQLSTATES.get(code) or _UNAVAILABLE_CLASSES.get(code[:2])
    ):
        return f"{reason} (SQLSTATE {code})"
    if isinstance(error, sa.exc.DBAPIError):
        orig = error.orig
        if orig is not None and (match := _SQLITE_UNAVAILABLE.search(str(orig))):
            return f"SQLite: {match.group(0).lower()}"
        if isinstance(getattr(orig, "__cause__", None), OSError):
            return _os_reason(orig.__cause__)  # type: ignore[union-attr, arg-type]
        if error.connection_invalidated:
            return "the connection was lost"
        if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
            # Beyond those above, SQLite's operational errors are the statement's.
            return None if "sqlite" in type(orig).__module__ else "the connection failed"
        return None
    if isinstance(error, OSError):
        return _os_reason(error)
    return None


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the database cannot be reached, rather than a bad statement."""
    return unavailable_reason(error) is not None


@contextlib.contextmanager
def _domain_errors() -> Iterator[None]:
    """Driver errors that are not the statement's fault come out as domain errors (see
    translate_error); every other error passes as it is."""
    try:
        yield
    except Exception as error:
        if (translated := translate_error(error)) is not None:
            raise translated from error
        raise


def translate_error(error: BaseException) -> DomainError | None:
    """The domain error a driver error stands for, when it is not the statement's fault:
    DatabaseUnavailable, DatabaseTimeout for a statement the database cancelled, or
    ValidationError for a value the database cannot take (SQLSTATE class 22, "data
    exception": a NUL character in text, which PostgreSQL refuses and SQLite stores)."""
    if isinstance(error, DatabaseUnavailable | DatabaseTimeout):
        return None
    code = _sqlstate(error)
    if code == _QUERY_CANCELED:
        return DatabaseTimeout()
    if code is not None and code.startswith(_DATA_EXCEPTION_CLASS):
        return ValidationError(
            "input", "A value is one the database cannot store (such as a NUL character)"
        )
    reason = unavailable_reason(error)
    return DatabaseUnavailable(reason=reason) if reason is not None else None


# Seconds `Database.dispose` lets connections close politely before cutting them.
DISPOSE_TIMEOUT = 2.0


class Reads:
    """Where reads go: the primary, or one of its replicas (persistence/replicas.py).
    Outside any transaction: PostgreSQL's AUTOCOMMIT sends no BEGIN (asyncpg's would be
    implicit) and so no COMMIT or ROLLBACK; SQLite's reads skip our BEGIN. The options
    apply to each connection checked out, and are undone when it goes back to the pool,
    without a round trip on either driver."""

    def __init__(self, engine: AsyncEngine, role: str, info: dict[str, Any]) -> None:
        options: dict[str, Any] = (
            {_SQLITE_NO_BEGIN: True}
            if engine.dialect.name == "sqlite"
            else {"isolation_level": "AUTOCOMMIT"}
        )
        self.engine = engine.execution_options(**options)
        # "primary" or "replica": the statement metrics' label.
        self.role = role
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, info=info
        )

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: each statement sees the database as it is when it
        runs. Never write through it (nothing would roll the write back); never share it
        between concurrent tasks."""
        with _domain_errors():
            async with self._sessions() as session:
                yield session

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for reads only, as `session` gives a session: plain rows, no
        ORM identity map (the compiled read path)."""
        with _domain_errors():
            async with self.engine.connect() as connection:
                yield connection


class Database:
    """One per process: the engine, its pool, and the units of work built on them; and
    the replicas queries may read from, when DATABASE_READ_URLS lists some."""

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
        self.primary = Reads(self.engine, "primary", self.session_info)
        # PostgreSQL's driver connections opened and not yet collected, to cut at disposal.
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        replicas = [self._engine_for(url) for url in settings.read_urls]
        self.replicas = Replicas(
            self.primary,
            [Reads(engine, "replica", self.session_info) for engine in replicas],
            max_lag=settings.replica_max_lag,
            wait=settings.replica_wait_ms / 1000,
        )
        if not settings.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", self._track)

    def _engine_for(self, url: str) -> AsyncEngine:
        """A replica's engine: the primary's settings, another server."""
        engine = _create_postgres_engine(self.settings.model_copy(update={"url": url}))
        event.listen(engine.sync_engine, "connect", self._track)
        return engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def engines(self) -> list[tuple[AsyncEngine, str]]:
        """Every engine with its role: the primary's, then each replica's."""
        return [(self.engine, "primary"), *((r.engine, r.reads.role) for r in self.replicas)]

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session outside any unit of work: for reads, which need no commit. Writes made
        through it are rolled back when the block ends; use `transaction` to keep them.
        Never share one between concurrent tasks."""
        with _domain_errors():
            async with self._sessions() as session:
                yield session

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A session for reads only on the primary, outside any transaction (Reads)."""
        return self.primary.session()

    def read_connection(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A bare connection for reads only on the primary, outside any transaction."""
        return self.primary.connection()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: commits when the block succeeds, rolls back when it raises.

        Integrity errors come out as domain errors (Conflict, ValidationError) and lost
        connections as DatabaseUnavailable.
        """
        with _domain_errors():
            try:
                async with self._write_turn, self._sessions() as session, session.begin():
                    if self.dialect == "sqlite":
                        await session.connection(execution_options={_SQLITE_IMMEDIATE: True})
                    yield session
            except sa.exc.IntegrityError as error:
                raise translate_integrity_error(error) from error

    async def write_position(self) -> str | None:
        """How far the primary's write-ahead log has been written (PostgreSQL; None on
        SQLite): asked after a commit, a position every replica must replay past to see it."""
        if self.settings.is_sqlite:
            return None
        async with self.read_connection() as connection:
            position = await connection.scalar(sa.text("SELECT pg_current_wal_lsn()::text"))
        return str(position)

    async def dispose(self) -> None:
        """Close the pool's connections. Each gets a moment to say goodbye and is cut
        past it, so shutting down never waits on a database that stops answering."""

        async def close(connection: Any) -> None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=DISPOSE_TIMEOUT)

        # The driver's own close gives up quietly; the pool's would log each timeout.
        await asyncio.gather(*(close(c) for c in list(self._connections)))
        for engine, _ in self.engines():
            await engine.dispose()

    def _track(self, dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        self._connections.add(dbapi_connection.driver_connection)


class TimedPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool for async engines, telling `on_wait` (when someone listens: the
    metrics) how long each checkout waited for a connection, connecting included."""

    on_wait: Callable[[float], None] | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            if self.on_wait is not None:
                self.on_wait(time.perf_counter() - started)

    def recreate(self) -> "TimedPool":
        # A pool is recreated on disposal and after a disconnect: the listener stays.
        pool = super().recreate()
        assert isinstance(pool, TimedPool)
        pool.on_wait = self.on_wait
        return pool


def _create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    return _create_postgres_engine(settings)


def _create_postgres_engine(settings: DatabaseSettings) -> AsyncEngine:
    # Bounds on every wait, so a database that stops answering never holds a request or a
    # pool slot forever: connecting, waiting for a free connection, and each statement
    # (cancelled by the server itself past statement_timeout).
    server_settings = {}
    if settings.statement_timeout > 0:
        server_settings["statement_timeout"] = str(round(settings.statement_timeout * 1000))
    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        poolclass=TimedPool,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=settings.pool_recycle,
        pool_timeout=settings.pool_timeout,
        connect_args={"timeout": settings.connect_timeout, "server_settings": server_settings},
    )
    _ping_in_one_round_trip(engine)
    return engine


def _ping_in_one_round_trip(engine: AsyncEngine) -> None:
    """Pre-ping a pooled connection with a bare `;`. SQLAlchemy's asyncpg dialect (2.1,
    pinned) wraps its ping in BEGIN ... ROLLBACK unless the connection is in autocommit
    mode, for PgBouncer's transaction pooling: three round trips, and an empty
    transaction, on every checkout. A connection being checked out holds no transaction,
    so the ping runs as the autocommit one: the dialect's own code, one round trip."""
    dialect = engine.dialect
    ping = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        level = dbapi_connection.isolation_level
        dbapi_connection.isolation_level = "autocommit"
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.isolation_level = level

    dialect.do_ping = do_ping  # type: ignore[method-assign]


async def open_sqlite(database: str, **options: Any) -> Any:
    """An aiosqlite connection, or the error opening it once aiosqlite's thread has ended.

    aiosqlite 0.22 (pinned) stops the thread of a connection that failed to open without
    waiting for it; the thread's last callback then meets whatever loop is current, closed
    or not ("Event loop is closed" in a later test). Waiting for it here leaves nothing
    behind.
    """
    import aiosqlite

    connection = aiosqlite.connect(database, **options)
    thread = connection._thread
    # As SQLAlchemy does for the connections it opens: never keep the process alive.
    thread.daemon = True
    try:
        return await connection
    except BaseException:
        await asyncio.to_thread(thread.join)
        raise


def _create_sqlite_engine(settings: DatabaseSettings) -> AsyncEngine:
    engine = create_async_engine(
        settings.url,
        echo=settings.echo,
        poolclass=TimedPool,
        connect_args={"async_creator_fn": open_sqlite},
    )
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
        if connection.get_execution_options().get(_SQLITE_NO_BEGIN, False):
            return
        immediate = connection.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
