"""`songbook backup` and `songbook restore`, on each backend, under a concurrent write load:
the restored library is whole (every job's song is there, every constraint holds) and is the
library as it was at one moment of the backup (no song without the job written with it)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base
from persistence.repositories import JobRepository, SongRepository
from persistence.settings import DatabaseSettings
from tests.conftest import PostgresDatabases, new_database_url
from tests.factories import add_songs
from tests.live import run_command

SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        songs = await session.scalar(sa.select(sa.func.count()).select_from(SONGS))
        jobs = await session.scalar(sa.select(sa.func.count()).select_from(JOBS))
    return int(songs or 0), int(jobs or 0)


@contextlib.asynccontextmanager
async def writing(db: Database) -> AsyncIterator[list[int]]:
    """Songs added with their first job, each pair in one transaction, until the block
    ends; the list holds how many pairs were written."""
    written = [0]
    stop = asyncio.Event()

    async def write() -> None:
        while not stop.is_set():
            async with db.transaction() as session:
                song = await SongRepository(session).create(title=f"Live {written[0]}")
                await JobRepository(session).create(song_id=song.id)
            written[0] += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(write())
    try:
        yield written
    finally:
        stop.set()
        await task


async def test_a_backup_taken_under_writes_restores_whole(
    empty_url: str,
    tmp_path: Path,
    backend_name: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
) -> None:
    async def another_database() -> str:
        return await asyncio.to_thread(
            new_database_url, backend_name, tmp_path_factory, postgres_databases
        )

    await asyncio.to_thread(upgrade, empty_url)
    db = Database(DatabaseSettings(url=empty_url))
    snapshot = tmp_path / "library.backup"
    try:
        await add_songs(db, 40, jobs_per_song=2)
        seeded_songs, seeded_jobs = await counts(db)
        async with writing(db) as written:
            await asyncio.sleep(0.2)  # the load is under way
            before = written[0]
            status, output = await run_command(empty_url, "backup", str(snapshot))
            after = written[0]
        assert status == 0, output
        assert after > before, "writes went on while the backup ran"
        again, output = await run_command(empty_url, "backup", str(snapshot), stderr=True)
        assert again != 0 and "already exists" in output
    finally:
        await db.dispose()

    target = await another_database()
    status, output = await run_command(target, "restore", str(snapshot))
    assert status == 0, output
    restored = Database(DatabaseSettings(url=target))
    try:
        songs, jobs = await counts(restored)
        pairs = songs - seeded_songs
        assert jobs - seeded_jobs == pairs, (songs, jobs)  # never a song without its job
        assert before <= pairs <= after, (before, pairs, after)
        async with restored.read() as session:
            orphans = await session.scalar(
                sa.select(sa.func.count())
                .select_from(JOBS.outerjoin(SONGS, SONGS.c.id == JOBS.c.song_id))
                .where(SONGS.c.id.is_(None))
            )
            assert orphans == 0
            if restored.dialect == "sqlite":
                assert (await session.execute(sa.text("PRAGMA integrity_check"))).scalar() == "ok"
                assert (await session.execute(sa.text("PRAGMA foreign_key_check"))).all() == []
    finally:
        await restored.dispose()

    refused, output = await run_command(target, "restore", str(snapshot), stderr=True)
    assert refused != 0 and "not empty" in output and "--force" in output
    status, output = await run_command(target, "restore", str(snapshot), "--force")
    assert status == 0, output
    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(b"not a snapshot")
    elsewhere = await another_database()
    refused, output = await run_command(elsewhere, "restore", str(garbage), stderr=True)
    assert refused != 0 and ("snapshot" in output or "archive" in output), output
    assert "Traceback" not in output
