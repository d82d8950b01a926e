"""The compiled read path's memory: RSS while 100,000 distinct documents are planned.

    python -m tests.benchmarks.plan_cache [--documents 100000]

Each document differs (an alias carries its number), so each is parsed, validated,
planned and answered once, through the app in this process, on a small SQLite library.
The plan cache is bounded (graph/core/planner.py, PLAN_CACHE_SIZE entries), so resident
memory should stop growing once it is full: printed every tenth of the run, with the
growth after the first tenth as the figure that counts.
"""

import argparse
import asyncio
import resource
import tempfile
from pathlib import Path

import httpx

from graph.core.planner import PLAN_CACHE_SIZE
from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings


def rss_mib() -> float:
    """The process's resident set now, from /proc (ru_maxrss would only give the peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(documents: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/plans.db"
        await asyncio.to_thread(upgrade, url)
        await seed_library(DatabaseSettings(url=url), songs=200, random_seed=1)
        db = Database(DatabaseSettings(url=url))
        app = create_app(Settings(), db=db)
        planner = app.state.planner
        transport = httpx.ASGITransport(app=app)
        readings: list[tuple[int, float]] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for n in range(documents):
                query = (
                    f"query Page{n} {{ songs(first: 3) {{ edges {{ node {{ "
                    f"n{n}: title artist latestJob {{ status }} }} }} }} }}"
                )
                response = await http.post("/graphql", json={"query": query})
                assert response.status_code == 200, response.text
                if (n + 1) % max(1, documents // 10) == 0:
                    readings.append((n + 1, rss_mib()))
        await db.dispose()
    print(f"plan cache: {PLAN_CACHE_SIZE} documents; {planner.answered:,} answered compiled")
    for count, rss in readings:
        print(f"  after {count:>7,} distinct documents: RSS {rss:7.1f} MiB")
    first, last = readings[0][1], readings[-1][1]
    print(f"  growth after the first tenth: {last - first:+.1f} MiB ({last / first:.3f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().documents))
