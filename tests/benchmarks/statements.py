"""The library page's cost: SQL statements and time for 5 and 50 songs, and page 1 against
page 2,000 of a 100,000-song library (keyset pagination should make them cost the same).

    python -m tests.benchmarks.statements [--songs 100000] [--postgres URL]

Without --postgres the library is a fresh SQLite file; with it, a fresh database on that
PostgreSQL server, dropped afterwards.

Timings are medians over repeated runs, printed with their ratio to a baseline measured in
the same run, so the figures compare across machines.
"""

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import event

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks.scratch import scratch_database

LIBRARY_PAGE = """query($first: Int!, $after: String) {
  songs(first: $first, after: $after) {
    edges { node { title latestJob { status } jobs(first: 5) { edges { node { id } } } } }
    pageInfo { hasNextPage endCursor } } }"""
CURSORS_ONLY = """query($after: String) { songs(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } } }"""


async def measure(client: httpx.AsyncClient, variables: dict[str, Any], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.post(
            "/graphql", json={"query": LIBRARY_PAGE, "variables": variables}
        )
        timings.append(time.perf_counter() - started)
        assert "errors" not in response.json(), response.text
    return statistics.median(timings)


async def main(songs: int, postgres: str | None, runs: int) -> None:
    async with scratch_database(postgres) as url:
        await asyncio.to_thread(upgrade, url)
        settings = DatabaseSettings(url=url)
        print(f"database: {url.split('://')[0]}, seeding {songs} songs ...")
        await seed_library(settings, songs=songs)
        db = Database(settings)
        counted: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                counted.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        app = create_app(Settings(database=settings), db=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            baseline = await measure(client, {"first": 5}, runs)
            for size in (5, 50):
                counted.clear()
                await measure(client, {"first": size}, 1)
                statements = len(counted)
                seconds = await measure(client, {"first": size}, runs)
                print(
                    f"songs(first: {size}) with latestJob and jobs(first: 5): "
                    f"{statements} SQL statements, median {seconds * 1000:.1f} ms "
                    f"({seconds / baseline:.2f}x the 5-song page)"
                )

            # Walk to page 2,000 of 50 (song 100,000) by cursors, then time it against page 1.
            after = None
            target = min(2000, max(1, songs // 50))
            for _ in range((target - 1) * 50 // 100):
                body = (
                    await client.post(
                        "/graphql", json={"query": CURSORS_ONLY, "variables": {"after": after}}
                    )
                ).json()
                after = body["data"]["songs"]["pageInfo"]["endCursor"]
            first_page = await measure(client, {"first": 50}, runs)
            deep_page = await measure(client, {"first": 50, "after": after}, runs)
            print(
                f"page 1 of 50 songs: median {first_page * 1000:.1f} ms; page {target}: "
                f"median {deep_page * 1000:.1f} ms ({deep_page / first_page:.2f}x page 1)"
            )
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--songs", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.songs, args.postgres, args.runs))
