"""The jobs domain's dataloaders: jobs by id, and each song's jobs in one batch per page."""

from collections.abc import Sequence
from typing import Any

from graph.core.loaders import Loader, RequestLoaders
from persistence.models import Job
from persistence.pagination import Page, PageRequest
from persistence.repositories import JobRepository
from persistence.repositories.base import Columns, Reader


async def _jobs_by_id(session: Reader, ids: Sequence[str], columns: Columns) -> list[Any]:
    found = await JobRepository(session).get_many(ids, columns)
    return [found.get(id) for id in ids]


async def _latest_jobs_by_song(
    session: Reader, song_ids: Sequence[str], columns: Columns
) -> list[Any]:
    latest = await JobRepository(session).latest_jobs_for_songs(song_ids, columns)
    return [latest.get(song_id) for song_id in song_ids]


async def _job_counts_by_song(session: Reader, song_ids: Sequence[str], _: Columns) -> list[int]:
    counts = await JobRepository(session).count_for_songs(song_ids)
    return [counts[song_id] for song_id in song_ids]


async def _job_pages_by_song(
    session: Reader, keys: Sequence[tuple[str, PageRequest]], columns: Columns
) -> list[Page[Any]]:
    # Keys asking for the same page (the usual case: one field on every song of a page)
    # share one statement; a differing page gets a statement of its own.
    songs_by_request: dict[PageRequest, list[str]] = {}
    for song_id, request in keys:
        songs_by_request.setdefault(request, []).append(song_id)
    found: dict[tuple[str, PageRequest], Page[Any]] = {}
    jobs = JobRepository(session)
    for request, song_ids in songs_by_request.items():
        for song_id, page in (await jobs.jobs_for_songs(song_ids, request, columns)).items():
            found[song_id, request] = page
    return [found[key] for key in keys]


job_by_id = Loader[str, Job | None](_jobs_by_id)
latest_job_by_song = Loader[str, Job | None](_latest_jobs_by_song)
job_count_by_song = Loader[str, int](_job_counts_by_song)
job_page_by_song = Loader[tuple[str, PageRequest], Page[Job]](_job_pages_by_song)


def forget_song_jobs(loaders: RequestLoaders, song_id: str) -> None:
    """The song's job lists changed: its latest job, count and pages load afresh."""
    loaders.clear(latest_job_by_song, song_id)
    loaders.clear(job_count_by_song, song_id)
    loaders.clear_all(job_page_by_song)


def prime_job(loaders: RequestLoaders, job: Job) -> None:
    """After a write to `job`: later reads see it, and its song's job lists reload."""
    loaders.prime(job_by_id, job.id, job)
    forget_song_jobs(loaders, job.song_id)
