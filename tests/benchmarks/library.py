"""The library page's throughput over HTTP against a real server process: anonymous, and
with a reader's API token (which must cost no database round trip once checked), each as a
ratio to `/healthz` on the same server in the same run.

    python -m tests.benchmarks.library [--songs 1000] [--seconds 5] [--clients 8]
        [--postgres URL]
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from persistence.migrate import upgrade
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks.scratch import scratch_database
from tests.live import live_server

LIBRARY_PAGE = """query($first: Int!) {
  songs(first: $first) {
    edges { node { title artist latestJob { status progress } } }
    pageInfo { hasNextPage endCursor } } }"""


async def throughput(
    url: str, seconds: float, clients: int, headers: dict[str, str], page: bool
) -> float:
    """Requests per second `clients` concurrent clients get through in `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            while time.perf_counter() < deadline:
                if page:
                    response = await http.post(
                        "/graphql", json={"query": LIBRARY_PAGE, "variables": {"first": 20}}
                    )
                    assert "errors" not in response.json(), response.text
                else:
                    response = await http.get("/healthz")
                assert response.status_code == 200, response.text
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def main(postgres: str | None, songs: int, seconds: float, clients: int) -> None:
    async with scratch_database(postgres) as url:
        await asyncio.to_thread(upgrade, url)
        await seed_library(DatabaseSettings(url=url), songs=songs, random_seed=1)
        token = None
        try:
            from tests.auth import issue_token

            token = await issue_token(url, "reader")
        except ImportError:  # a checkout from before API tokens, measured for comparison
            pass
        with tempfile.TemporaryDirectory() as logs, live_server(url, Path(logs)) as server:
            # Warm up: parser and validation caches, the connection pool, the token cache.
            await throughput(server.url, 1, clients, {}, page=True)
            health = await throughput(server.url, seconds, clients, {}, page=False)
            anonymous = await throughput(server.url, seconds, clients, {}, page=True)
            print(f"/healthz: {health:,.0f} requests/s (baseline)")
            print(
                f"library page, anonymous: {anonymous:,.0f} requests/s "
                f"({anonymous / health:.3f} of /healthz)"
            )
            if token is not None:
                bearer = {"Authorization": f"Bearer {token}"}
                signed = await throughput(server.url, seconds, clients, bearer, page=True)
                print(
                    f"library page, API token: {signed:,.0f} requests/s "
                    f"({signed / health:.3f} of /healthz, {signed / anonymous:.3f} of anonymous)"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--songs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.songs, args.seconds, args.clients))
