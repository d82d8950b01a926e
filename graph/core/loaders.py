"""Per-request dataloaders: each batch is one repository call in a session of its own."""

from collections.abc import Sequence
from dataclasses import dataclass

from aiodataloader import DataLoader

from persistence.database import Database
from persistence.models import Job, Song
from persistence.repositories import JobRepository, SongJobs, SongRepository


@dataclass(frozen=True, slots=True)
class JobsPageKey:
    """Which slice of a song's job history a resolver wants."""

    song_id: str
    limit: int
    after: str | None = None


class Loaders:
    """Made fresh for every request, inside its event loop, so nothing leaks between users.

    Each batch function opens its own session: loaders fire concurrently and an
    AsyncSession must never be used by two tasks at once.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.song_by_id = DataLoader[str, Song | None](self._songs_by_id)
        self.job_by_id = DataLoader[str, Job | None](self._jobs_by_id)
        self.latest_job_by_song = DataLoader[str, Job | None](self._latest_jobs_by_song)
        self.jobs_by_song = DataLoader[JobsPageKey, SongJobs](self._jobs_by_song)
        self.job_count_by_song = DataLoader[str, int](self._job_counts_by_song)

    def prime_song(self, song: Song) -> None:
        self.song_by_id.clear(song.id).prime(song.id, song)

    def forget_song(self, song_id: str) -> None:
        self.song_by_id.clear(song_id)
        self.latest_job_by_song.clear(song_id)
        self.job_count_by_song.clear(song_id)
        self.jobs_by_song.clear_all()

    def prime_job(self, job: Job) -> None:
        """After a write to `job`: later reads see it, and the song's job lists reload."""
        self.job_by_id.clear(job.id).prime(job.id, job)
        self.latest_job_by_song.clear(job.song_id)
        self.job_count_by_song.clear(job.song_id)
        self.jobs_by_song.clear_all()

    async def _songs_by_id(self, ids: Sequence[str]) -> list[Song | None]:
        async with self._db.session() as session:
            found = await SongRepository(session).get_many(ids)
        return [found.get(id) for id in ids]

    async def _jobs_by_id(self, ids: Sequence[str]) -> list[Job | None]:
        async with self._db.session() as session:
            found = await JobRepository(session).get_many(ids)
        return [found.get(id) for id in ids]

    async def _latest_jobs_by_song(self, song_ids: Sequence[str]) -> list[Job | None]:
        async with self._db.session() as session:
            latest = await JobRepository(session).latest_jobs_for_songs(song_ids)
        return [latest.get(song_id) for song_id in song_ids]

    async def _job_counts_by_song(self, song_ids: Sequence[str]) -> list[int]:
        async with self._db.session() as session:
            counts = await JobRepository(session).count_for_songs(song_ids)
        return [counts[song_id] for song_id in song_ids]

    async def _jobs_by_song(self, keys: Sequence[JobsPageKey]) -> list[SongJobs]:
        # Keys asking for the same slice (the usual case: one field on every song of a
        # page) share one statement; a differing slice gets a statement of its own.
        slices: dict[tuple[int, str | None], list[str]] = {}
        for key in keys:
            slices.setdefault((key.limit, key.after), []).append(key.song_id)
        found: dict[JobsPageKey, SongJobs] = {}
        async with self._db.session() as session:
            jobs = JobRepository(session)
            for (limit, after), song_ids in slices.items():
                by_song = await jobs.jobs_for_songs(song_ids, limit=limit, after=after)
                for song_id, song_jobs in by_song.items():
                    found[JobsPageKey(song_id, limit, after)] = song_jobs
        return [found[key] for key in keys]
