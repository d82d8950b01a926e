"""How long the largest documents the limits allow hold up everyone else: another client's
`/healthz` latency, alone and while 4 clients send 7,000-field documents (each new, so
never cached), against a real server process.

    python -m tests.benchmarks.hold [--postgres URL]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.benchmarks.scratch import scratch_database
from tests.live import live_server

LARGE = "{ " + " ".join(["__typename"] * 7_000) + " }"
ATTACKERS = 4


async def healthz_latencies(url: str, count: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(count):
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    return latencies


async def main(postgres: str | None) -> None:
    async with scratch_database(postgres) as database:
        with tempfile.TemporaryDirectory() as logs, live_server(database, Path(logs)) as server:
            alone = await healthz_latencies(server.url, 50)
            attacking = True

            async def attacker() -> None:
                async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                    while attacking:
                        # A comment unique to each request defeats the parser cache.
                        query = f"{LARGE} # {time.perf_counter()}"
                        await http.post("/graphql", json={"query": query})

            tasks = [asyncio.create_task(attacker()) for _ in range(ATTACKERS)]
            await asyncio.sleep(0.5)
            attacked = await healthz_latencies(server.url, 50)
            attacking = False
            await asyncio.gather(*tasks)
    base = statistics.median(alone)
    p50 = statistics.median(attacked)
    print(f"/healthz alone: p50 {base * 1000:.1f} ms (baseline)")
    print(
        f"/healthz beside {ATTACKERS} clients sending 7,000-field documents: "
        f"p50 {p50 * 1000:.1f} ms ({p50 / base:.0f}x), max {max(attacked) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL")
    asyncio.run(main(parser.parse_args().postgres))
