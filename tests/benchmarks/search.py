"""Search as you type over a million songs: p50/p95 per class of term, over HTTP.

    python -m tests.benchmarks.search [--postgres URL] [--songs 1000000] [--runs 20]

Seeds the library once and keeps it for the next run (SQLite: .bench/search-N.db;
PostgreSQL: the database songbook_bench_search_N on the given server), with a few songs
planted for the rarer classes. One `songbook serve` process answers; each class is asked
`--runs` times, one request at a time, for a first page of 50, then again with totalCount
and totalCountIsCapped. Beside each, "scan" times the statement search ran before it was
indexed (a case-insensitive LIKE over title and artist, in the page's order) on the same
database, without HTTP, for the before-and-after.
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Song, SongSource
from persistence.repositories.songs import escape_like
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings, normalize_database_url
from tests.live import ROOT, live_server

# (class, term, songs planted with it in the title: those the seeded words lack)
CLASSES = [
    ("common word", "river", None),
    ("rare word", "zanzibar", ("Zanzibar Serenade", 25)),
    ("common two letters", "ri", None),
    ("rare two letters", "qz", ("Qzar Nights", 12)),
    ("with % or _", "100%", ("100% Karaoke_Night", 30)),
    ("matches nothing", "xyzzy", None),
    ("artist name", "northbound", None),
    # Found in the songs planted for "100%" only.
    ("rare one character", "%", None),
]
# Orders other than newest first, with a term.
ORDERS = [
    ("common word, by title", "river", "TITLE", "ASC"),
    ("rare word, by artist", "zanzibar", "ARTIST", "DESC"),
    ("common word, by relevance", "river", "RELEVANCE", "DESC"),
    ("word in titles, relevance", "love", "RELEVANCE", "DESC"),
    ("artist name, by relevance", "northbound", "RELEVANCE", "DESC"),
    ("rare word, by relevance", "zanzibar", "RELEVANCE", "DESC"),
]
PAGE = """query Search($q: String!, $field: SongSortField!, $direction: SortDirection!) {
  songs(search: $q, first: 50, orderBy: {field: $field, direction: $direction}) {
    edges { node { id title artist } } pageInfo { hasNextPage endCursor } } }"""
COUNTED = """query SearchCounted($q: String!, $field: SongSortField!, $direction: SortDirection!) {
  songs(search: $q, first: 50, orderBy: {field: $field, direction: $direction}) {
    totalCount totalCountIsCapped
    edges { node { id title artist } } pageInfo { hasNextPage endCursor } } }"""


async def library(postgres: str | None, songs: int) -> str:
    """The benchmark's library, seeded (and planted) unless an earlier run left it."""
    if postgres is None:
        folder = ROOT / ".bench"
        folder.mkdir(exist_ok=True)
        url = f"sqlite+aiosqlite:///{folder / f'search-{songs}.db'}"
    else:
        import asyncpg

        server = sa.make_url(normalize_database_url(postgres))
        name = f"songbook_bench_search_{songs}"
        admin = await asyncpg.connect(server.set(drivername="postgresql").render_as_string(False))
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = server.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    db = Database(DatabaseSettings(url=url))
    try:
        async with db.read() as session:
            have = await session.scalar(sa.select(sa.func.count()).select_from(Song))
    finally:
        await db.dispose()
    if have and have >= songs:
        sys.stderr.write(f"reusing {have:,} songs\n")
        return url
    started = time.perf_counter()
    await seed_library(DatabaseSettings(url=url), songs=songs, random_seed=1)
    sys.stderr.write(f"seeded {songs:,} songs in {time.perf_counter() - started:.0f} s\n")
    await plant(url)
    return url


async def plant(url: str) -> None:
    """Songs for the rare classes, spread over the library's whole history."""
    db = Database(DatabaseSettings(url=url))
    try:
        async with db.transaction() as session:
            oldest, newest = (
                await session.execute(
                    sa.select(sa.func.min(Song.date_added), sa.func.max(Song.date_added))
                )
            ).one()
            for _, _, planted in CLASSES:
                if planted is None:
                    continue
                title, count = planted
                for n in range(count):
                    moment = oldest + (newest - oldest) * (n + 0.5) / count
                    session.add(
                        Song(
                            title=title,
                            artist="Planted",
                            source=SongSource.UPLOAD,
                            date_added=moment,
                        )
                    )
    finally:
        await db.dispose()


# The orders the old statement had, by field and direction.
OLD_ORDERS: dict[tuple[str, str], tuple[Any, ...]] = {
    ("DATE_ADDED", "DESC"): (Song.date_added.desc(), Song.id.desc()),
    ("TITLE", "ASC"): (Song.title.asc(), Song.id.asc()),
    ("ARTIST", "DESC"): (sa.func.coalesce(Song.artist, "").desc(), Song.id.desc()),
}


async def scan(url: str, term: str, runs: int, order: tuple[str, str]) -> list[float]:
    """The statement search ran before this issue, timed on the database directly."""
    pattern = f"%{escape_like(term)}%"
    statement = (
        sa.select(Song.id, Song.title, Song.artist, Song.date_added)
        .where(
            sa.or_(Song.title.ilike(pattern, escape="\\"), Song.artist.ilike(pattern, escape="\\"))
        )
        .order_by(*OLD_ORDERS[order])
        .limit(51)
    )
    db = Database(DatabaseSettings(url=url))
    times = []
    try:
        async with db.read() as session:
            for _ in range(runs):
                started = time.perf_counter()
                (await session.execute(statement)).all()
                times.append(time.perf_counter() - started)
    finally:
        await db.dispose()
    return times


async def ask(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], runs: int
) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        times.append(time.perf_counter() - started)
        body = response.json()
        if "errors" in body:
            raise SystemExit(f"{variables}: {body['errors']}")
    return times


def describe(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(times) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


async def main(postgres: str | None, songs: int, runs: int, scans: int) -> None:
    url = await library(postgres, songs)
    backend = "PostgreSQL" if postgres else "SQLite"
    print(f"{backend}, {songs:,} songs (and planted ones), {runs} runs each, one request at a time")
    cases = [(label, term, "DATE_ADDED", "DESC") for label, term, _ in CLASSES] + ORDERS
    with live_server(url, Path(ROOT / ".bench")) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            for label, term, field, direction in cases:
                variables = {"q": term, "field": field, "direction": direction}
                await ask(http, COUNTED, variables, 2)  # warm: plans, caches
                page = await ask(http, PAGE, variables, runs)
                counted = await ask(http, COUNTED, variables, runs)
                line = f"  {label:<26} {term!r:<12} page {describe(page)} | with totalCount {describe(counted)}"
                if (field, direction) in OLD_ORDERS and scans:
                    old = await scan(url, term, scans, (field, direction))
                    line += f" | scan p50 {statistics.median(old) * 1000:7.1f} ms"
                print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--songs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scans", type=int, default=3, help="runs of the old statement (0: none)")
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.songs, args.runs, args.scans))
