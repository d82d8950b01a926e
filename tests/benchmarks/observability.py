"""What metrics, JSON logs and tracing (sampler off) cost the library page.

    python -m tests.benchmarks.observability [--postgres URL] [--songs N] [--rounds 6]
        [--seconds 2] [--clients 8]

Two Songbook servers over one seeded library, driven alike and interleaved (the harness of
tests/benchmarks/compiled.py): one with nothing watching (SONGBOOK_METRICS=off, text logs
at WARNING, no OTEL_* variables), one as an operator runs it (metrics on, JSON logs at INFO,
a request line each, and tracing configured with an OTLP endpoint but the sampler off,
OTEL_TRACES_SAMPLER=always_off). Prints requests/s, p50/p99 and the ratio on/off.
"""

import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from persistence.migrate import upgrade
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks.compiled import (
    Target,
    load_arguments,
    measure,
    open_clients,
    operations,
    same_answers,
)
from tests.benchmarks.scratch import scratch_database
from tests.live import live_server

QUIET = {"SONGBOOK_METRICS": "off", "SONGBOOK_LOG_FORMAT": "text"}
WATCHED = {
    "SONGBOOK_METRICS": "on",
    "SONGBOOK_LOG_FORMAT": "json",
    # Nothing listens there: with the sampler off, no span is ever exported.
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_TRACES_SAMPLER": "always_off",
}


async def main(
    postgres: str | None, songs: int | None, rounds: int, seconds: float, clients: int
) -> None:
    songs = songs or (100_000 if postgres else 20_000)
    async with scratch_database(postgres) as url:
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        await seed_library(DatabaseSettings(url=url), songs=songs, random_seed=1)
        sys.stderr.write(f"\nseeded in {time.perf_counter() - started:.0f} s\n")
        library = (await operations(url, songs))[0]
        with tempfile.TemporaryDirectory() as logs:
            async with AsyncExitStack() as stack:
                targets = []
                for label, env, level in (
                    ("nothing watching", QUIET, "warning"),
                    ("metrics, JSON logs, tracing", WATCHED, "info"),
                ):
                    server = stack.enter_context(live_server(url, Path(logs), env, log_level=level))
                    targets.append(Target(label, server, songbook=True))
                await open_clients(stack, targets, clients)
                await same_answers(targets, [library])
                results = (await measure(targets, [library], rounds, seconds))[library.name]
                request_lines = sum(
                    '"logger": "songbook.requests"' in line
                    for line in targets[1].server.log().splitlines()
                )
    backend = "PostgreSQL" if postgres else "SQLite"
    print(
        f"{backend}, {songs:,} songs, the library page: {clients} clients, {rounds} rounds of {seconds:g} s"
    )
    quiet, watched = results["nothing watching"], results["metrics, JSON logs, tracing"]
    for label, runs in results.items():
        print(f"  {label:<30} {runs.describe()}")
    # Each round of one server is paired with the same round of the other, run right
    # after it: the median of those ratios is steadier than the totals' against drift.
    paired = sorted(w / q for w, q in zip(watched.round_rates, quiet.round_rates, strict=True))
    print(
        f"  watched / quiet: {watched.rate / quiet.rate:.3f} over all rounds, "
        f"{statistics.median(paired):.3f} the median round (rounds {paired[0]:.3f} to "
        f"{paired[-1]:.3f}; {request_lines:,} request lines logged)"
    )


if __name__ == "__main__":
    args = load_arguments(__doc__.split("\n\n")[0], rounds=6).parse_args()
    asyncio.run(main(args.postgres, args.songs, args.rounds, args.seconds, args.clients))
