"""Backups that restore: a consistent snapshot taken while the server keeps writing.

SQLite: the online backup API (Python's sqlite3), which copies the database page by page
and starts again whenever a writer changes a page it already copied, so the copy is the
database as it was at one moment. PostgreSQL: `pg_dump --format=custom`, whose single
transaction in REPEATABLE READ sees one snapshot; the binary must be on PATH.

Restoring loads a snapshot into the configured database, which must be empty unless
`force` says to replace what it holds; the snapshot's schema must be at a revision of
Songbook's migrations, and is then migrated to the newest.
"""

import asyncio
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.migrate import alembic_config, upgrade

T = TypeVar("T")


class BackupError(Exception):
    """A backup or restore that cannot be done, said in one line."""


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def _libpq_url(url: str) -> str:
    """The URL as PostgreSQL's own tools read it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found on PATH; install PostgreSQL's client tools")
    return found


def _run(arguments: list[str], what: str) -> None:
    result = subprocess.run(arguments, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # The tool's first line says why; the rest (and the URL) stays out of the message.
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[0]
        raise BackupError(f"{what} failed: {reason}")


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy the SQLite database `source` into `target` with the online backup API: the
    database as it was at one moment, whatever writers do meanwhile."""
    reading = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writing = sqlite3.connect(target)
    try:
        with writing:
            reading.backup(writing)
    finally:
        reading.close()
        writing.close()


def backup(url: str, path: Path) -> None:
    """Write a consistent snapshot of the database at `url` to `path` (a new file)."""
    if path.exists():
        raise BackupError(f"{path} already exists; choose a new file")
    if make_url(url).get_backend_name() == "sqlite":
        try:
            _copy_sqlite(_sqlite_path(url), path)
        except sqlite3.Error as error:
            path.unlink(missing_ok=True)
            raise BackupError(f"the backup failed: {error}") from None
        return
    arguments = [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path)]
    _run([*arguments, "--dbname", _libpq_url(url)], "pg_dump")


def _revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _tables(connection: sa.Connection) -> list[str]:
    return sa.inspect(connection).get_table_names()


def _ask(url: str, question: Callable[[sa.Connection], T]) -> T:
    """`question(connection)` answered by the database at `url`."""
    if make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(make_url(url).set(drivername="sqlite"))
        try:
            with engine.connect() as connection:
                return question(connection)
        finally:
            engine.dispose()

    async def ask() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(question)
        finally:
            await engine.dispose()

    return asyncio.run(ask())


def restore(url: str, path: Path, *, force: bool = False) -> str:
    """Load the snapshot at `path` into the database at `url`, then migrate it to the
    newest revision; the revision the snapshot was at."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    scripts = ScriptDirectory.from_config(alembic_config(url))
    known = {script.revision for script in scripts.walk_revisions()}
    if not force and _ask(url, _tables):
        raise BackupError("the database is not empty; pass --force to replace it")
    if make_url(url).get_backend_name() == "sqlite":
        try:
            revision = _ask(f"sqlite:///{path}", _revision)
        except sa.exc.DatabaseError:
            raise BackupError(f"{path} is not a SQLite snapshot") from None
        if revision not in known:
            raise BackupError(f"{path} holds no schema revision Songbook knows")
        _copy_sqlite(path, _sqlite_path(url))
    else:
        pg_restore = _tool("pg_restore")
        listing = subprocess.run(
            [pg_restore, "--list", str(path)], capture_output=True, text=True, check=False
        )
        if listing.returncode != 0:
            raise BackupError(f"{path} is not a pg_dump archive")
        arguments = [pg_restore, "--no-owner", "--exit-on-error", "--single-transaction"]
        if force:
            arguments += ["--clean", "--if-exists"]
        _run([*arguments, "--dbname", _libpq_url(url), str(path)], "pg_restore")
        revision = _ask(url, _revision)
        if revision not in known:
            raise BackupError("the snapshot holds no schema revision Songbook knows")
    upgrade(url)
    assert revision is not None
    return revision
