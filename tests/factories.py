"""Rows written straight through the repositories, for tests that need a library."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from persistence.database import Database
from persistence.models import Job, JobStatus, Song, SongSource

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


async def add_songs(
    db: Database,
    count: int,
    jobs_per_song: int = 0,
    job_status: JobStatus | None = None,
    **fields: Any,
) -> list[Song]:
    """`count` songs added a minute apart (the last is the newest), each with its jobs:
    a failed first attempt and completed retries, unless `job_status` says otherwise."""
    songs: list[Song] = []
    async with db.transaction() as session:
        for n in range(count):
            values: dict[str, Any] = {
                "title": f"Song {n:03d}",
                "artist": f"Artist {n % 7}",
                "source": SongSource.UPLOAD,
                "date_added": BASE_TIME + timedelta(minutes=n),
            }
            values.update(fields)
            song = Song(**values)
            session.add(song)
            songs.append(song)
        await session.flush()
        for song in songs:
            for attempt in range(jobs_per_song):
                created = song.date_added + timedelta(seconds=attempt)
                session.add(
                    Job(
                        song_id=song.id,
                        status=job_status or (JobStatus.COMPLETED if attempt else JobStatus.FAILED),
                        progress=100 if attempt and job_status is None else 40,
                        created_at=created,
                        updated_at=created,
                    )
                )
    return songs


async def add_song(db: Database, **fields: Any) -> Song:
    return (await add_songs(db, 1, **fields))[0]


def global_id(type_name: str, key: str) -> str:
    """A Relay global id as Songbook writes them (base64 of `Type:key`), made as a client
    that knows the format would make it."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()
