"""One statement per level, or one statement for the whole library page?

    python -m tests.benchmarks.statement_shapes [--postgres URL] [--songs N] [--runs 400]

The compiled read path reads the library page (50 songs and each one's newest job) in two
statements: the page of songs, then the newest job of every song on it, through the same
repository calls the resolvers use. A single statement can do both, joining each song to
its newest job (a LATERAL subquery on PostgreSQL, a correlated one on SQLite). This times
both shapes over one connection, interleaved, and prints the milliseconds per page with
their ratio. Run against a fresh scratch database, seeded as `make bench` seeds it.
"""

import argparse
import asyncio
import statistics
import time
from typing import Any

import sqlalchemy as sa

from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base
from persistence.pagination import PageRequest
from persistence.repositories import JobRepository, SongRepository
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks.scratch import scratch_database

SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]
COLUMNS = ("title", "artist", "album", "source", "date_added")
PAGE = 50


def single_statement(dialect: str) -> sa.Select[Any]:
    newest = JOBS.alias("newest")
    latest = (
        sa.select(newest.c.id, newest.c.status, newest.c.progress)
        .where(newest.c.song_id == SONGS.c.id)
        .order_by(newest.c.created_at.desc(), newest.c.id.desc())
        .limit(1)
    )
    page = sa.select(SONGS.c.id, *(SONGS.c[c] for c in COLUMNS))
    if dialect == "postgresql":
        joined = latest.lateral("latest")
        page = page.add_columns(joined.c.id.label("job_id"), joined.c.status, joined.c.progress)
        page = page.select_from(SONGS.outerjoin(joined, sa.true()))
    else:
        newest_id = latest.with_only_columns(newest.c.id).scalar_subquery()
        page = page.add_columns(JOBS.c.id.label("job_id"), JOBS.c.status, JOBS.c.progress)
        page = page.select_from(SONGS.outerjoin(JOBS, JOBS.c.id == newest_id))
    return page.order_by(SONGS.c.date_added.desc(), SONGS.c.id.desc()).limit(PAGE + 1)


async def per_level(db: Database) -> None:
    async with db.read_connection() as connection:
        page = await SongRepository(connection).list(PageRequest(first=PAGE), columns=COLUMNS)
        await JobRepository(connection).latest_jobs_for_songs(
            [row.id for row in page.rows], ["status", "progress"]
        )


async def in_one(db: Database, statement: sa.Select[Any]) -> None:
    async with db.read_connection() as connection:
        (await connection.execute(statement)).all()


async def main(url: str | None, songs: int | None, runs: int) -> None:
    async with scratch_database(url) as scratch:
        count = songs or (100_000 if url else 20_000)
        await asyncio.to_thread(upgrade, scratch)
        await seed_library(DatabaseSettings(url=scratch), songs=count, random_seed=1)
        db = Database(DatabaseSettings(url=scratch))
        statement = single_statement(db.dialect)
        timings: dict[str, list[float]] = {"per level (2 statements)": [], "one statement": []}
        try:
            for _ in range(20):  # warm the pool, the statement caches and the buffers
                await per_level(db)
                await in_one(db, statement)
            for _ in range(runs):
                for name in timings:
                    started = time.perf_counter()
                    if name == "one statement":
                        await in_one(db, statement)
                    else:
                        await per_level(db)
                    timings[name].append((time.perf_counter() - started) * 1000)
        finally:
            await db.dispose()
    print(f"{db.dialect}, {count:,} songs, the library page ({PAGE} songs, newest jobs):")
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, median in medians.items():
        print(f"  {name:26} {median:6.2f} ms per page (median of {runs})")
    print(
        f"  one statement / per level: {medians['one statement'] / medians['per level (2 statements)']:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--songs", type=int)
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.songs, args.runs))
