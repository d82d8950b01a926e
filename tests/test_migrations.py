"""Alembic owns the schema: it builds, tears down and rebuilds it, and matches the models."""

import asyncio
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.migrate import ROOT, alembic_config, downgrade, upgrade
from persistence.models import MIGRATION_OWNED, Base
from tests.live import ROOT as REPOSITORY


async def inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(url, poolclass=sa.pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


# The full-text table's own tables (SQLite's FTS5 keeps songs_search_data and others).
OWNED_PREFIXES = ("songs_search",)


def table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def modelled(name: str | None, kind: str, parents: Any) -> bool:
    return name not in MIGRATION_OWNED and not (name or "").startswith(OWNED_PREFIXES)


def differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": modelled}
    )
    with warnings.catch_warnings():
        # SQLite's reflection skips expression indexes, with a warning: they are owned by
        # the migrations (MIGRATION_OWNED) and left out here anyway.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        return list(compare_metadata(context, Base.metadata))


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    await asyncio.to_thread(upgrade, empty_url)
    assert {"songs", "jobs", "users"} <= await inspect(empty_url, table_names)
    assert await inspect(empty_url, current_revision) == head

    await asyncio.to_thread(downgrade, empty_url, "base")
    assert await inspect(empty_url, table_names) <= {"alembic_version"}

    await asyncio.to_thread(upgrade, empty_url)
    assert {"songs", "jobs", "users"} <= await inspect(empty_url, table_names)
    assert await inspect(empty_url, differences) == []


async def test_models_match_the_head_revision(migrated_url: str) -> None:
    assert await inspect(migrated_url, differences) == []


def test_one_head_and_revisions_named_by_what_they_do() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
    for revision in scripts.walk_revisions():
        assert revision.doc and not revision.doc.lower().startswith("empty")
    assert ROOT.name == "migrations"


def test_processes_starting_together_migrate_once(empty_url: str, tmp_path: Path) -> None:
    """Several `songbook migrate` at once on one new database: all succeed, schema at head."""
    env = {"DATABASE_URL": empty_url, "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "graph.server.cli", "migrate"],
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs
    assert asyncio.run(inspect(empty_url, differences)) == []
