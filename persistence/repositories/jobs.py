"""Processing jobs: history per song, newest first."""

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from persistence.models import Job, JobStatus
from persistence.pagination import KeysetOrder, Page, PageRequest, decode_cursor
from persistence.repositories.base import Repository

NEWEST_FIRST = KeysetOrder(
    name="jobs:created_at:desc",
    columns=(Job.created_at, Job.id),
    attributes=("created_at", "id"),
    descending=True,
)


@dataclass(frozen=True, slots=True)
class SongJobs:
    """One song's slice of its job history, newest first, and whether older jobs follow."""

    jobs: list[Job]
    has_more: bool


class JobRepository(Repository[Job]):
    model = Job

    async def jobs_for_songs(
        self, song_ids: Iterable[str], *, limit: int, after: str | None = None
    ) -> dict[str, SongJobs]:
        """Up to `limit` newest jobs of each song, in one statement for all the songs."""
        wanted = list(dict.fromkeys(song_ids))
        if not wanted:
            return {}
        where: list[sa.ColumnElement[bool]] = [Job.song_id.in_(wanted)]
        if after is not None:
            where.append(NEWEST_FIRST.beyond(decode_cursor("after", after, NEWEST_FIRST)))
        rank = (
            sa.func.row_number()
            .over(partition_by=Job.song_id, order_by=NEWEST_FIRST.order_by())
            .label("rank")
        )
        ranked = sa.select(Job.id, rank).where(*where).subquery()
        statement = (
            sa.select(Job)
            .join(ranked, ranked.c.id == Job.id)
            .where(ranked.c.rank <= limit + 1)
            .order_by(Job.song_id, ranked.c.rank)
        )
        grouped: dict[str, list[Job]] = {song_id: [] for song_id in wanted}
        for job in (await self.session.scalars(statement)).all():
            grouped[job.song_id].append(job)
        return {
            song_id: SongJobs(jobs=jobs[:limit], has_more=len(jobs) > limit)
            for song_id, jobs in grouped.items()
        }

    async def latest_jobs_for_songs(self, song_ids: Iterable[str]) -> dict[str, Job]:
        """The newest job of each song that has one, in one statement."""
        return {
            song_id: song_jobs.jobs[0]
            for song_id, song_jobs in (await self.jobs_for_songs(song_ids, limit=1)).items()
            if song_jobs.jobs
        }

    async def list(self, request: PageRequest, status: JobStatus | None = None) -> Page[Job]:
        """A page of all jobs, newest first, optionally of one status."""
        where = [] if status is None else [Job.status == status]
        return await self.page(request, NEWEST_FIRST, where)

    async def count_for_song(self, song_id: str) -> int:
        return await self.count([Job.song_id == song_id])

    async def count_with_status(self, status: JobStatus | None = None) -> int:
        return await self.count([] if status is None else [Job.status == status])
