"""Claim throughput: jobs claimed per second by 20 concurrent workers draining 1,000 jobs,
over HTTP to a real server and straight through the repository.

    python -m tests.benchmarks.claims [--postgres URL] [--jobs 1000] [--workers 20]
        [--server-workers 1]

Without --postgres the database is a fresh SQLite file; with it, a fresh database on that
PostgreSQL server. Each run also checks that every job was claimed exactly once.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base
from persistence.settings import DatabaseSettings
from tests.benchmarks.scratch import scratch_database
from tests.jobs import (
    add_pending_jobs,
    drain_over_http,
    drain_through_repository,
    worker_tokens,
)
from tests.live import live_server


def check_exactly_once(claims: list[list[str]], expected: int) -> None:
    claimed = [job for batch in claims for job in batch]
    if len(claimed) != expected or len(set(claimed)) != expected:
        raise SystemExit(f"claimed {len(claimed)} ({len(set(claimed))} distinct) of {expected}")


async def over_http(url: str, jobs: int, workers: int, server_workers: int) -> float:
    with (
        tempfile.TemporaryDirectory() as logs,
        live_server(url, Path(logs), workers=server_workers) as server,
    ):
        db = Database(DatabaseSettings(url=url))
        try:
            await add_pending_jobs(db, jobs)
            tokens = await worker_tokens(url, workers)
            started = time.perf_counter()
            claims = await drain_over_http(server.url, tokens)
            elapsed = time.perf_counter() - started
            check_exactly_once(claims, jobs)
            async with db.transaction() as session:
                for table in reversed(Base.metadata.sorted_tables):
                    await session.execute(table.delete())
        finally:
            await db.dispose()
    return jobs / elapsed


async def through_repository(url: str, jobs: int, workers: int) -> float:
    seeder = Database(DatabaseSettings(url=url))
    await add_pending_jobs(seeder, jobs)
    await seeder.dispose()
    settings = DatabaseSettings(url=url, pool_size=1, max_overflow=0)
    claimers = [Database(settings) for _ in range(workers)]

    try:
        started = time.perf_counter()
        claims = await drain_through_repository(claimers)
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(d.dispose() for d in claimers))
    check_exactly_once(claims, jobs)
    return jobs / elapsed


async def main(postgres: str | None, jobs: int, workers: int, server_workers: int) -> None:
    async with scratch_database(postgres) as url:
        await asyncio.to_thread(upgrade, url)
        backend = "PostgreSQL" if postgres else "SQLite"
        http_rate = await over_http(url, jobs, workers, server_workers)
        print(
            f"{backend}: {workers} workers over HTTP ({server_workers} server process(es)) "
            f"claimed {jobs} jobs at {http_rate:,.0f} jobs/s"
        )
        repository_rate = await through_repository(url, jobs, workers)
        print(
            f"{backend}: {workers} connections through the repository claimed {jobs} jobs "
            f"at {repository_rate:,.0f} jobs/s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--server-workers", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.jobs, args.workers, args.server_workers))
