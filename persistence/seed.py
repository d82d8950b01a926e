"""A realistic demo library: songs from every source, each with a job history.

Seeding only adds: it never edits or deletes a row, so it runs on an empty library or a
used one, as often as you like. Titles, artists and histories are random per run (pass
`random_seed` for a repeatable shape). YouTube ids never collide: they are unique within
the run, and each batch's ids are checked against the songs table in the transaction
that inserts them (under SQLite's write lock), any taken one drawn again.

What it writes is a state the real system can be in:

- A job goes PENDING -> PROCESSING -> COMPLETED | FAILED (persistence.lifecycle). Only
  a song's newest job may be unfinished: `retryJob` queues a new job only after a FAILED
  one, so every older attempt is FAILED.
- COMPLETED jobs have progress 100; FAILED jobs keep the progress they reached and say
  why; neither holds a lease. Both keep `claimed_by`, the (made-up) `seed-worker-N` that
  ran them, as `completeJob` and `failJob` do.
- A song has stems (vocals_path, instrumental_path) only when its newest job COMPLETED.
- Every timestamp lies at least half an hour in the past.

By default every job is final, so the library is at rest: a worker pool started on it
finds nothing to claim. Unfinished jobs are opt-in, because workers act on them:

- `pending`: that many songs' newest job is PENDING, a backlog `claimJob` hands out.
- `processing`: that many songs' newest job is PROCESSING, claimed by a `seed-worker-N`
  whose lease has lapsed, as after a worker crash. A seeded PROCESSING job has no live
  worker behind it, so a lease in the future would only postpone the same outcome: the
  first `claimJob` takes it over and starts it again from 0.
"""

import asyncio
import contextlib
import random
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.database import Database
from persistence.ids import new_id
from persistence.models import Base, JobStatus, SongSource, fold
from persistence.search import (
    SEARCH_INDEXES,
    SQLITE_FILL,
    SQLITE_OPTIMIZE,
    create_search_index,
)
from persistence.settings import DatabaseSettings

ARTISTS = [
    "The Lanterns",
    "Mira Vale",
    "Northbound",
    "Echo Harbour",
    "Sunday Static",
    "Juno Park",
    "Velvet Ridge",
    "Kite & Kettle",
    "Ada Sorrel",
    "Los Faroles",
    "Hollow Pines",
    "Nova Quay",
]
WORDS = [
    "Midnight",
    "Summer",
    "Paper",
    "Golden",
    "River",
    "Neon",
    "Quiet",
    "Electric",
    "Heart",
    "Runaway",
    "Satellite",
    "Honey",
    "Glass",
    "Wild",
    "Silver",
    "Echo",
    "Ocean",
    "Little",
]
NOUNS = ["Song", "Lights", "Road", "Dreams", "Rain", "Fire", "Sky", "Town", "Dance", "Love"]
YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A real video id's last character carries 4 bits, not 6: one of these 16.
YOUTUBE_LAST = "AEIMQUYcgkosw048"
FAILURES = [
    "Separation failed: corrupt audio",
    "Separation failed: unsupported sample rate",
    "Worker ran out of memory",
]
DOWNLOAD_FAILURES = ["Download failed: video unavailable", "Download failed: age-restricted"]
PROCESSING_MESSAGES = [None, "Separating stems", "Downloading audio"]
ATTEMPTS = (1, 1, 1, 1, 2, 3)  # jobs per song: the first, then retries after failures
SEED_WORKERS = 8
SONG_SPACING = timedelta(seconds=7)  # between two songs' date_added
RETRY_GAP = timedelta(minutes=10)  # between a song's attempts
# The newest song is added this long before the run, so that its whole history (the
# attempts, their run time and a lapsed lease: under 30 minutes) is in the past too.
HISTORY_MARGIN = timedelta(hours=1)
LAPSED_LEASE = timedelta(seconds=60)  # the lease a seeded PROCESSING job had, long gone
IN_CHUNK = 500  # youtube ids per `IN (...)` lookup, well below any bind-parameter limit
# Songs from which a load into an empty library builds its search index once, at the end,
# rather than row by row.
DEFER_INDEXES_FROM = 50_000


Row = dict[str, object]
# Core inserts of plain rows: several times faster than the ORM for a large library.
SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]


@dataclass(frozen=True, slots=True)
class Seeded:
    """What one run added."""

    songs: int
    jobs: int
    pending: int
    processing: int


class _YouTubeIds:
    """Video ids unique within the run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        # Batches are made in a thread while the one before may draw ids again.
        self.lock = threading.Lock()

    def new(self) -> str:
        with self.lock:
            return self._new()

    def _new(self) -> str:
        while True:
            candidate = "".join(self.rng.choices(YOUTUBE_ALPHABET, k=10))
            candidate += self.rng.choice(YOUTUBE_LAST)
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


async def _avoid_existing(session: AsyncSession, songs: list[Row], ids: _YouTubeIds) -> None:
    """Draw again every youtube id of `songs` that a song in the table already has."""
    unchecked = [row for row in songs if row["youtube_id"] is not None]
    while unchecked:
        by_id = {str(row["youtube_id"]): row for row in unchecked}
        wanted = list(by_id)
        taken: set[str] = set()
        for at in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[at : at + IN_CHUNK]
            statement = sa.select(SONGS.c.youtube_id).where(SONGS.c.youtube_id.in_(chunk))
            taken.update(await session.scalars(statement))
        unchecked = [by_id[youtube_id] for youtube_id in taken]
        for row in unchecked:
            row["youtube_id"] = ids.new()


def _job(rng: random.Random, song_id: str, created: datetime, status: JobStatus) -> Row:
    """One job as the lifecycle leaves it in `status`."""
    row: Row = {
        "id": new_id(),
        "song_id": song_id,
        "status": status,
        "progress": 0,
        "message": None,
        "claimed_by": None,
        "lease_expires_at": None,
        "created_at": created,
        "updated_at": created,
    }
    if status is JobStatus.PENDING:
        return row
    # Claimed by a worker, which reported (or finished) some minutes later.
    last_heard = created + timedelta(seconds=rng.uniform(20, 300))
    row["claimed_by"] = f"seed-worker-{rng.randint(1, SEED_WORKERS)}"
    row["updated_at"] = last_heard
    if status is JobStatus.COMPLETED:
        row["progress"] = 100
    elif status is JobStatus.FAILED:
        row["progress"] = rng.randint(0, 99)
    else:
        row["progress"] = rng.randint(1, 99)
        row["message"] = rng.choice(PROCESSING_MESSAGES)
        row["lease_expires_at"] = last_heard + LAPSED_LEASE
    return row


def _song_rows(
    first: int,
    count: int,
    start: datetime,
    rng: random.Random,
    ids: _YouTubeIds,
    unfinished: dict[int, JobStatus],
) -> tuple[list[Row], list[Row]]:
    """Songs `first`..`first + count - 1` of the run, and their job histories."""
    songs: list[Row] = []
    jobs: list[Row] = []
    for n in range(first, first + count):
        song_id = new_id()
        added = start + n * SONG_SPACING + timedelta(seconds=rng.random())
        source = rng.choices(list(SongSource), weights=(6, 3, 1))[0]
        attempts = rng.choice(ATTEMPTS)
        newest = (
            unfinished.get(n)
            or rng.choices((JobStatus.COMPLETED, JobStatus.FAILED), weights=(4, 1))[0]
        )
        failures = FAILURES + DOWNLOAD_FAILURES if source is SongSource.YOUTUBE else FAILURES
        for attempt in range(attempts):
            status = newest if attempt == attempts - 1 else JobStatus.FAILED
            created = added + attempt * RETRY_GAP + timedelta(seconds=rng.random())
            job = _job(rng, song_id, created, status)
            if status is JobStatus.FAILED:
                job["message"] = rng.choice(failures)
            jobs.append(job)
        stem = f"/library/{song_id}"
        has_stems = newest is JobStatus.COMPLETED
        title = f"{rng.choice(WORDS)} {rng.choice(NOUNS)}"
        artist = rng.choice(ARTISTS)
        songs.append(
            {
                "id": song_id,
                "title": title,
                "artist": artist,
                "title_folded": fold(title),
                "artist_folded": fold(artist),
                "album": rng.choice([None, f"{rng.choice(WORDS)} Sessions"]),
                "source": source,
                "youtube_id": ids.new() if source is SongSource.YOUTUBE else None,
                "file_path": f"{stem}/original.mp3",
                "vocals_path": f"{stem}/vocals.wav" if has_stems else None,
                "instrumental_path": f"{stem}/instrumental.wav" if has_stems else None,
                "lyrics": None,
                "date_added": added,
            }
        )
    return songs, jobs


async def _insert(session: AsyncSession, table: sa.Table, rows: list[Row]) -> None:
    """Add `rows` (all with the same keys) as fast as the database takes them: PostgreSQL
    through COPY, SQLite through one prepared INSERT run for every row; either way with
    each value as its column's type binds it, and no per-row work of the ORM's."""
    if not rows:
        return
    connection = await session.connection()
    columns = list(rows[0])
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=[tuple(row.values()) for row in rows], columns=columns
        )
        return
    binders = [table.c[name].type._cached_bind_processor(connection.dialect) for name in columns]
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    records = [
        tuple(
            value if bind is None else bind(value)
            for value, bind in zip(row.values(), binders, strict=True)
        )
        for row in rows
    ]
    await connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})", records
    )


async def _defer_search_indexes(session: AsyncSession) -> list[str]:
    """Before a large load into an empty library, stop keeping the search index row by
    row, to build it once at the end: kept up one row at a time it costs more than the
    load itself (PostgreSQL's trigram indexes several times over; SQLite's search table
    a third of the time, its prefix index a sixth). What SQLite needs to make its
    triggers and index again."""
    if (await session.connection()).dialect.name == "postgresql":
        for name in SEARCH_INDEXES:
            await session.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        return []
    # SQLite's, as the migrations made them, to be made again as they were.
    deferred = (
        await session.execute(
            sa.text(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'songs' "
                "AND name IN (:index, :insert, :update, :delete)"
            ),
            {
                "index": "ix_songs_title_folded_prefix",
                **{when: f"songs_search_{when}" for when in ("insert", "update", "delete")},
            },
        )
    ).all()
    for kind, name, _ in deferred:
        await session.execute(sa.text(f"DROP {kind.upper()} {name}"))
    return [sql for _, _, sql in deferred]


async def _fill_sqlite_search(session: AsyncSession, deferred: list[str]) -> None:
    """SQLite: every song into the search table at once, then the triggers and the
    prefix index again."""
    # The library was empty: every song is this load's, and its rowid a free key.
    for statement in (
        "UPDATE songs SET search_key = rowid WHERE search_key IS NULL",
        SQLITE_FILL,
        SQLITE_OPTIMIZE,
        *deferred,
    ):
        await session.execute(sa.text(statement))


# PostgreSQL's search indexes are built this many at a time, each on a connection of its
# own: a load's 22 s of building take 12 s on two cores.
INDEX_BUILDERS = 2


async def _build_postgresql_search_indexes(db: Database) -> None:
    """PostgreSQL: the search indexes set aside, built side by side (CREATE INDEX takes a
    lock that others building on the same table share)."""
    waiting = list(SEARCH_INDEXES)

    async def builder() -> None:
        while waiting:
            name = waiting.pop(0)
            async with db.transaction() as session:
                await session.execute(sa.text(create_search_index(name)))

    await asyncio.gather(*(builder() for _ in range(INDEX_BUILDERS)))


def _progress(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rseeding [{'#' * filled}{'.' * (width - filled)}] {done}/{total} songs")
    sys.stderr.flush()


def database_label(url: str) -> str:
    """The database a URL names, fit to print: no password, no query parameters."""
    parts = sa.engine.make_url(url)
    # Built afresh: `URL.set(password=None)` would keep the password.
    safe = sa.engine.URL.create(
        parts.drivername,
        username=parts.username,
        host=parts.host,
        port=parts.port,
        database=parts.database,
    )
    return safe.render_as_string(hide_password=False)


async def seed_library(
    settings: DatabaseSettings,
    *,
    songs: int,
    batch_size: int = 5000,
    pending: int = 0,
    processing: int = 0,
    random_seed: int | None = None,
) -> Seeded:
    """Add `songs` demo songs with their jobs, in batches of `batch_size` songs.

    `pending` and `processing` songs (chosen at random) get an unfinished newest job;
    see the module docstring. `random_seed` repeats a run's shape, not its ids.
    """
    if songs < 0 or batch_size < 1 or pending < 0 or processing < 0:
        raise ValueError("songs, pending and processing must be >= 0, batch_size >= 1")
    if pending + processing > songs:
        raise ValueError("pending and processing songs cannot outnumber the songs")
    rng = random.Random(random_seed)
    # Its own generator: ids drawn again after a collision leave the rest of the run alone.
    ids = _YouTubeIds(random.Random(rng.getrandbits(64)))
    chosen = rng.sample(range(songs), pending + processing)
    unfinished = dict.fromkeys(chosen[:pending], JobStatus.PENDING)
    unfinished.update(dict.fromkeys(chosen[pending:], JobStatus.PROCESSING))
    start = datetime.now(UTC) - HISTORY_MARGIN - songs * SONG_SPACING
    db = Database(settings)
    done = jobs = 0
    try:
        async with db.read() as session:
            # Ids never collide within a run: only songs already there could hold one.
            had_songs = bool(await session.scalar(sa.select(SONGS.c.id).limit(1)))
        deferring = not had_songs and songs >= DEFER_INDEXES_FROM
        # SQLite loads with its search index deferred in one transaction, the triggers
        # set aside inside it: a seed stopped midway, even killed, leaves the library as
        # it was, never without them. (PostgreSQL's indexes stay away after a kill, and
        # `songbook search rebuild` makes them again.)
        whole = deferring and db.dialect == "sqlite"
        async with contextlib.AsyncExitStack() as stack:
            shared = await stack.enter_async_context(db.transaction()) if whole else None

            def unit() -> contextlib.AbstractAsyncContextManager[AsyncSession]:
                return contextlib.nullcontext(shared) if shared else db.transaction()

            deferred = None
            if deferring:
                async with unit() as session:
                    deferred = await _defer_search_indexes(session)
            try:
                # Each batch is made in a thread while the one before is written: the
                # database's work and Python's overlap.
                batch = asyncio.to_thread(
                    _song_rows, 0, min(batch_size, songs), start, rng, ids, unfinished
                )
                while done < songs:
                    count = min(batch_size, songs - done)
                    song_rows, job_rows = await batch
                    if done + count < songs:
                        batch = asyncio.to_thread(
                            _song_rows,
                            done + count,
                            min(batch_size, songs - done - count),
                            start,
                            rng,
                            ids,
                            unfinished,
                        )
                    async with unit() as session:
                        if had_songs:
                            await _avoid_existing(session, song_rows, ids)
                        await _insert(session, SONGS, song_rows)
                        await _insert(session, JOBS, job_rows)
                    done += count
                    jobs += len(job_rows)
                    _progress(done, songs)
            finally:
                if done:
                    sys.stderr.write("\n")  # ends the progress line, also when a batch fails
                # PostgreSQL's indexes are built however the load ended.
                if deferring and shared is None:
                    await _build_postgresql_search_indexes(db)
            # SQLite's table is filled after a whole load only: a failed one rolls back,
            # triggers and all.
            if shared is not None and deferred is not None:
                await _fill_sqlite_search(shared, deferred)
        if done:
            # The planner's statistics lag a bulk load until autovacuum catches up; with
            # them stale, PostgreSQL scans every job for a page's latest jobs (~90 ms on
            # 100,000 songs) instead of seeking the (song_id, created_at, id) index (~0.5 ms).
            # PostgreSQL's VACUUM marks the new rows' pages all visible too, as index-only
            # reads need (a relevance page of a common title's start: see Plan.PREFIXED);
            # it runs outside a transaction, as read sessions do.
            statement = "VACUUM (ANALYZE)" if db.dialect == "postgresql" else "ANALYZE"
            async with db.read() as session:
                await session.execute(sa.text(statement))
    finally:
        await db.dispose()
    return Seeded(songs=done, jobs=jobs, pending=pending, processing=processing)
