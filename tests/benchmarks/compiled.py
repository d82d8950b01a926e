"""Songbook against the hand-written ceiling (tests/benchmarks/ceiling.py), side by side:
requests/s, the ratio Songbook/ceiling, and p50/p99 latency for each benchmark operation.

    python -m tests.benchmarks.compiled [--postgres URL] [--songs N] [--rounds 4]
        [--seconds 2] [--clients 8] [--compiled on|off]

Without --postgres the library is a fresh SQLite file (20,000 songs by default); with it, a
fresh database on that PostgreSQL server (100,000 songs), seeded the same way every run.
Songbook runs as one `songbook serve` process, the ceiling as one uvicorn process; the same
load generator (httpx, `--clients` concurrent clients in this process) drives one server
at a time, in rounds A, B, A, B... so that drift touches both alike. Before measuring, each
operation's answer from both servers is compared byte for byte.

`--compiled` sets SONGBOOK_COMPILED for Songbook; left out, Songbook is measured with the
planner on and off once it has the setting, and as it is until then.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks import ceiling
from tests.benchmarks.scratch import scratch_database
from tests.conftest import StatementCounter
from tests.live import LiveServer, live_process, live_server

PAGE = 50
COMPILED = "SONGBOOK_COMPILED"
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Operation:
    name: str
    route: str  # the ceiling's
    document: str  # Songbook's
    variables: dict[str, Any]


@dataclass
class Runs:
    """What one server did for one operation, over all rounds."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # the load generator's CPU seconds while driving it
    round_rates: list[float] = field(default_factory=list)  # requests/s of each round

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    def describe(self) -> str:
        busy = self.client_cpu / self.seconds
        return (
            f"{self.rate:8,.0f} requests/s   p50 {statistics.median(self.latencies) * 1000:6.1f} "
            f"ms   p99 {self.percentile(0.99):6.1f} ms   (load generator {busy:.0%} busy)"
        )


@dataclass
class Target:
    """A server and how to ask it an operation."""

    label: str
    server: LiveServer
    songbook: bool
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def request(self, operation: Operation) -> tuple[str, bytes]:
        if self.songbook:
            body = {"query": operation.document, "variables": operation.variables}
            return "/graphql", orjson.dumps(body)
        return operation.route, orjson.dumps(operation.variables)


def compiled_setting_recognised() -> bool:
    """Whether Songbook reads SONGBOOK_COMPILED (the planner of issue 10 has landed)."""
    return any(
        COMPILED in getattr(info.validation_alias, "choices", ())
        for info in Settings.model_fields.values()
    )


async def operations(url: str, songs: int) -> list[Operation]:
    """The benchmark operations on this library; page 2,000 (or the last whole page of a
    smaller library) starts after the end cursor of the page before it."""
    deep = max(1, min(2000, songs // PAGE))
    db = Database(DatabaseSettings(url=url))
    try:
        async with db.engine.connect() as connection:
            order = sa.select(ceiling.SONGS.c.date_added, ceiling.SONGS.c.id).order_by(
                ceiling.SONGS.c.date_added.desc(), ceiling.SONGS.c.id.desc()
            )
            before = (await connection.execute(order.offset((deep - 1) * PAGE - 1).limit(1))).one()
            middle = (await connection.execute(order.offset(songs // 2).limit(1))).one()
    finally:
        await db.dispose()
    after = ceiling.SONG_ORDER.cursor_of(before) if deep > 1 else None
    return [
        Operation("library page", "/library", ceiling.LIBRARY, {"first": PAGE}),
        Operation(
            "songs with jobs(first: 10)", "/songs-with-jobs", ceiling.SONGS_WITH_JOBS,
            {"first": PAGE},
        ),
        Operation("node (a song)", "/node", ceiling.NODE, {"id": ceiling.global_id("Song", middle.id)}),
        Operation("search page", "/search", ceiling.SEARCH, {"first": 20, "search": "river"}),
        Operation(
            f"library page {deep:,}", "/library", ceiling.LIBRARY, {"first": PAGE, "after": after}
        ),
    ]  # fmt: skip


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", counter)


async def statements_per_request(url: str, ops: list[Operation]) -> dict[str, tuple[int, int]]:
    """SQL statements (transaction control left out) each server sends for one request of
    each operation, counted in this process on the same database."""
    db = Database(DatabaseSettings(url=url))
    songbook = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(db=db)), base_url="http://songbook"
    )
    hand = ceiling.create_app(url)
    by_hand = httpx.AsyncClient(transport=httpx.ASGITransport(app=hand), base_url="http://c")
    counts = {}
    try:
        for op in ops:
            with counting(db.engine) as ours:
                body = {"query": op.document, "variables": op.variables}
                (await songbook.post("/graphql", json=body)).raise_for_status()
            with counting(hand.state.engine) as theirs:
                (await by_hand.post(op.route, json=op.variables)).raise_for_status()
            counts[op.name] = (ours.count, theirs.count)
    finally:
        await songbook.aclose()
        await by_hand.aclose()
        await db.dispose()
        await hand.state.engine.dispose()
    return counts


async def open_clients(stack: AsyncExitStack, targets: list[Target], clients: int) -> None:
    """`clients` HTTP clients for each target, one connection each, closed with `stack`."""
    for target in targets:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        target.clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=target.server.url, limits=limits, headers=JSON)
            )
            for _ in range(clients)
        ]


async def same_answers(targets: list[Target], ops: list[Operation]) -> None:
    for op in ops:
        bodies = set()
        for target in targets:
            path, content = target.request(op)
            response = await target.clients[0].post(path, content=content)
            assert response.status_code == 200, response.text
            bodies.add(response.content)
        if len(bodies) != 1:
            raise SystemExit(f"{op.name}: the servers answer differently: {sorted(bodies)}")


async def drive(target: Target, op: Operation, seconds: float, runs: Runs | None) -> None:
    """`seconds` of every client of `target` asking `op` back to back."""
    path, content = target.request(op)
    latencies: list[float] = []
    count = 0
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal count
        while (started := time.perf_counter()) < deadline:
            response = await http.post(path, content=content)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or b'"errors"' in response.content:
                raise SystemExit(f"{target.label}, {op.name}: {response.text[:500]}")
            count += 1

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(http) for http in target.clients))
    if runs is not None:
        runs.round_rates.append(count / (time.perf_counter() - started))
        runs.seconds += time.perf_counter() - started
        runs.client_cpu += time.process_time() - cpu
        runs.requests += count
        runs.latencies.extend(latencies)


async def measure(
    targets: list[Target], ops: list[Operation], rounds: int, seconds: float
) -> dict[str, dict[str, Runs]]:
    results: dict[str, dict[str, Runs]] = {}
    for op in ops:
        results[op.name] = {target.label: Runs() for target in targets}
        for target in targets:  # warm-up: caches, pools, prepared statements
            await drive(target, op, min(1.0, seconds), None)
        for _ in range(rounds):
            for target in targets:
                await drive(target, op, seconds, results[op.name][target.label])
    return results


async def main(
    postgres: str | None,
    songs: int | None,
    rounds: int,
    seconds: float,
    clients: int,
    compiled: str | None,
) -> None:
    songs = songs or (100_000 if postgres else 20_000)
    if compiled is not None:
        modes: list[str | None] = [compiled]
    else:
        modes = ["on", "off"] if compiled_setting_recognised() else [None]
    backend = "PostgreSQL" if postgres else "SQLite"
    async with scratch_database(postgres) as url:
        await asyncio.to_thread(upgrade, url)
        seed_started = time.perf_counter()
        await seed_library(DatabaseSettings(url=url), songs=songs, random_seed=1)
        sys.stderr.write(f"\nseeded in {time.perf_counter() - seed_started:.0f} s\n")
        ops = await operations(url, songs)
        counts = await statements_per_request(url, ops)
        with tempfile.TemporaryDirectory() as logs:
            async with AsyncExitStack() as stack:
                targets = []
                for mode in modes:
                    env = {} if mode is None else {COMPILED: mode}
                    server = stack.enter_context(live_server(url, Path(logs), env))
                    label = "Songbook" if mode is None else f"Songbook, compiled {mode}"
                    targets.append(Target(label, server, songbook=True))
                command = [
                    sys.executable, "-m", "uvicorn", "tests.benchmarks.ceiling:create_app",
                    "--factory", "--log-level", "warning", "--port",
                ]  # fmt: skip
                hand = stack.enter_context(
                    live_process(lambda port: [*command, str(port)], url, Path(logs))
                )
                targets.append(Target("ceiling", hand, songbook=False))
                await open_clients(stack, targets, clients)
                await same_answers(targets, ops)
                results = await measure(targets, ops, rounds, seconds)

    print(
        f"{backend}, {songs:,} songs: {clients} clients, {rounds} rounds of {seconds:g} s "
        "per server and operation, one server process each"
    )
    for op in ops:
        runs = results[op.name]
        by_hand = runs["ceiling"]
        songbook_statements, ceiling_statements = counts[op.name]
        print(
            f"\n{op.name}: SQL statements per request: Songbook {songbook_statements}, "
            f"ceiling {ceiling_statements}"
        )
        for label, run in runs.items():
            ratio = "" if label == "ceiling" else f"   {run.rate / by_hand.rate:.3f} of the ceiling"
            print(f"  {label:<24} {run.describe()}{ratio}")


def load_arguments(description: str, rounds: int) -> argparse.ArgumentParser:
    """The options of a benchmark that drives live servers: the database, the library's
    size, and the load."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--songs", type=int, help="100,000 on PostgreSQL, 20,000 on SQLite")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--seconds", type=float, default=2.0, help="per server and round")
    parser.add_argument("--clients", type=int, default=8)
    return parser


if __name__ == "__main__":
    parser = load_arguments(__doc__.split("\n\n")[0], rounds=4)
    parser.add_argument("--compiled", choices=["on", "off"], help=f"sets {COMPILED} for Songbook")
    args = parser.parse_args()
    asyncio.run(
        main(args.postgres, args.songs, args.rounds, args.seconds, args.clients, args.compiled)
    )
