"""A realistic demo library: songs from every source, each with a job history."""

import random
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from persistence.config import DatabaseSettings
from persistence.database import Database
from persistence.ids import new_id
from persistence.models import Base, JobStatus, SongSource

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


Row = dict[str, object]
# Core inserts of plain rows: several times faster than the ORM for a large library.
SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]


def _song_rows(count: int, start: datetime, rng: random.Random) -> tuple[list[Row], list[Row]]:
    songs: list[Row] = []
    jobs: list[Row] = []
    for n in range(count):
        song_id = new_id()
        added = start + timedelta(seconds=n * 7 + rng.random())
        source = rng.choices(list(SongSource), weights=(6, 3, 1))[0]
        stem = f"/library/{song_id}"
        songs.append(
            {
                "id": song_id,
                "title": f"{rng.choice(WORDS)} {rng.choice(NOUNS)}",
                "artist": rng.choice(ARTISTS),
                "album": rng.choice([None, f"{rng.choice(WORDS)} Sessions"]),
                "source": source,
                "youtube_id": "".join(rng.choices(YOUTUBE_ALPHABET, k=11))
                if source is SongSource.YOUTUBE
                else None,
                "file_path": f"{stem}/original.mp3",
                "vocals_path": f"{stem}/vocals.wav",
                "instrumental_path": f"{stem}/instrumental.wav",
                "lyrics": None,
                "date_added": added,
            }
        )
        for attempt in range(rng.choice((1, 1, 1, 2, 3))):
            status = rng.choice(list(JobStatus)) if attempt == 0 else JobStatus.FAILED
            created = added + timedelta(minutes=attempt)
            jobs.append(
                {
                    "id": new_id(),
                    "song_id": song_id,
                    "status": status,
                    "progress": {JobStatus.COMPLETED: 100, JobStatus.PENDING: 0}.get(
                        status, rng.randint(0, 99)
                    ),
                    "message": "Separation failed: corrupt audio"
                    if status is JobStatus.FAILED
                    else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
    return songs, jobs


def _progress(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rseeding [{'#' * filled}{'.' * (width - filled)}] {done}/{total} songs")
    sys.stderr.flush()


async def seed_library(settings: DatabaseSettings, *, songs: int, batch_size: int = 5000) -> int:
    """Insert `songs` demo songs with their jobs in batches; returns how many were added."""
    db = Database(settings)
    rng = random.Random(20261124)
    start = datetime.now(UTC) - timedelta(seconds=songs * 7)
    done = 0
    try:
        while done < songs:
            count = min(batch_size, songs - done)
            song_rows, job_rows = _song_rows(count, start + timedelta(seconds=done * 7), rng)
            async with db.transaction() as session:
                await session.execute(SONGS.insert(), song_rows)
                await session.execute(JOBS.insert(), job_rows)
            done += count
            _progress(done, songs)
        if done:
            # The planner's statistics lag a bulk load until autovacuum catches up; with
            # them stale, PostgreSQL scans every job for a page's latest jobs (~90 ms on
            # 100,000 songs) instead of seeking the (song_id, created_at, id) index (~0.5 ms).
            async with db.transaction() as session:
                await session.execute(sa.text("ANALYZE"))
    finally:
        await db.dispose()
        sys.stderr.write("\n")
    return done
