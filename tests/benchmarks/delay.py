"""Live progress delay: from a worker sending `reportJobProgress` to a `jobUpdated`
subscriber receiving that change, over real HTTP and WebSocket connections.

    python -m tests.benchmarks.delay [--postgres URL] [--reports 1000]

Without --postgres one server process on a fresh SQLite file serves both the worker and
the subscriber. With it, a fresh PostgreSQL database behind two server processes: the
worker reports to one and the subscriber listens on the other, so every event crosses
processes through LISTEN/NOTIFY. As a baseline measured in the same run, the plain round
trip of a one-field `job` query to the worker's server.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.auth import bearer, issue_token
from tests.benchmarks.scratch import scratch_database
from tests.conftest import GraphQLClient
from tests.jobs import claim, new_song_with_job, report
from tests.live import live_server
from tests.ws import graphql_socket

WATCH = "subscription($id: ID!) { jobUpdated(jobId: $id) { progress message } }"
JOB = "query($id: ID!) { job(id: $id) { progress } }"


def summary(name: str, seconds: list[float], baseline: float) -> str:
    ordered = sorted(seconds)
    median = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"{name}: median {median * 1000:.2f} ms ({median / baseline:.2f}x baseline), "
        f"p99 {p99 * 1000:.2f} ms, worst {ordered[-1] * 1000:.2f} ms of {len(ordered)}"
    )


async def measure(worker_url: str, subscriber_ws_url: str, reports: int, token: str) -> None:
    async with httpx.AsyncClient(base_url=worker_url, headers=bearer(token)) as http:
        gql = GraphQLClient(http)
        await new_song_with_job(gql, "Delay benchmark")
        job = await claim(gql, "bench-worker")
        assert job is not None

        baseline_runs = []
        for _ in range(200):
            started = time.perf_counter()
            await gql.data(JOB, id=job["id"])
            baseline_runs.append(time.perf_counter() - started)
        baseline = statistics.median(baseline_runs)

        delays: list[float] = []
        round_trips: list[float] = []
        async with graphql_socket(subscriber_ws_url) as socket:
            await socket.subscribe(WATCH, id=job["id"])
            # The subscription is live once a change made after it arrives.
            await report(gql, job["id"], "bench-worker", 0, "warm-up")
            assert (await socket.next_data())["jobUpdated"]["message"] == "warm-up"

            for number in range(reports):
                progress = number * 100 // reports
                message = f"step {number}"
                started = time.perf_counter()
                sent = asyncio.create_task(
                    report(gql, job["id"], "bench-worker", progress, message)
                )
                event = (await socket.next_data())["jobUpdated"]
                received = time.perf_counter()
                result = await sent
                round_trips.append(time.perf_counter() - started)
                assert result["__typename"] == "WorkerJobSuccess", result
                assert event == {"progress": progress, "message": message}, event
                delays.append(received - started)

    print(f"baseline (job query round trip): median {baseline * 1000:.2f} ms")
    print(summary("reportJobProgress round trip", round_trips, baseline))
    print(summary("reportJobProgress -> subscriber", delays, baseline))


async def main(postgres: str | None, reports: int) -> None:
    async with scratch_database(postgres) as url:
        with tempfile.TemporaryDirectory() as logs, ExitStack() as servers:
            worker_server = servers.enter_context(live_server(url, Path(logs)))
            if postgres:
                subscriber_server = servers.enter_context(live_server(url, Path(logs)))
                print("PostgreSQL: worker and subscriber on two server processes")
            else:
                subscriber_server = worker_server
                print("SQLite: worker and subscriber on one server process")
            # An admin may create the song and act as the named worker.
            token = await issue_token(url, "admin")
            await measure(worker_server.url, subscriber_server.ws_url, reports, token)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--reports", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.reports))
