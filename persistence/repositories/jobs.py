"""Processing jobs: history per song, newest first, and the work queue workers draw from.

Every write here announces the job (persistence.events), so subscribers hear of
each committed change whichever path made it.
"""

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from persistence.errors import ClaimNotHeld, InvalidTransition, NotFound
from persistence.events import announce
from persistence.lifecycle import check_transition, checked_progress
from persistence.models import Job, JobStatus, Song, utcnow
from persistence.pagination import KeysetOrder, Page, PageRequest
from persistence.repositories.base import Columns, Repository, any_of, column_list

JOBS = cast(sa.Table, Job.__table__)

NEWEST_FIRST = KeysetOrder(
    name="jobs:created_at:desc",
    columns=(Job.created_at, Job.id),
    attributes=("created_at", "id"),
    descending=True,
)


# What groups a song's jobs and orders them, read whatever else a caller needs.
_JOB_KEYS = ("song_id", "created_at")


@functools.lru_cache(maxsize=256)
def _ranked_jobs(
    columns: frozenset[str] | None, backwards: bool, after: bool, before: bool, dialect: str
) -> sa.Select[Any]:
    """The statement behind `_ranked`, built once per shape of request: the songs, the
    page size and the cursors' values are its parameters (`song_ids`, `per_song`,
    `after_N`, `before_N`), so building it and its cache key costs nothing per request."""
    rank = (
        sa.func.row_number()
        .over(partition_by=Job.song_id, order_by=NEWEST_FIRST.order_by(reverse=backwards))
        .label("rank")
    )
    bounds = []
    if after:
        bounds.append(NEWEST_FIRST.beyond_parameters("after"))
    if before:
        bounds.append(NEWEST_FIRST.beyond_parameters("before", reverse=True))
    ranked = (
        sa.select(Job.id, rank).where(any_of(Job.song_id, "song_ids", dialect), *bounds).subquery()
    )
    chosen = [Job] if columns is None else column_list(Job, [*sorted(columns), *_JOB_KEYS])
    return (
        sa.select(*chosen)
        .join(ranked, ranked.c.id == Job.id)
        .where(ranked.c.rank <= sa.bindparam("per_song"))
        .order_by(Job.song_id, ranked.c.rank)
    )


class JobRepository(Repository[Job]):
    model = Job

    async def jobs_for_songs(
        self, song_ids: Iterable[str], request: PageRequest, columns: Columns = None
    ) -> dict[str, Page[Any]]:
        """One page of each song's jobs, newest first, in one statement for all the songs;
        with `columns`, plain rows of those (and of what groups and orders them)."""
        request = request.validated()
        grouped = await self._ranked(song_ids, request, columns)
        return {song_id: request.page_of(jobs, NEWEST_FIRST) for song_id, jobs in grouped.items()}

    async def latest_jobs_for_songs(
        self, song_ids: Iterable[str], columns: Columns = None
    ) -> dict[str, Any]:
        """The newest job of each song that has one, in one statement."""
        grouped = await self._ranked(song_ids, PageRequest(first=0), columns)
        return {song_id: jobs[0] for song_id, jobs in grouped.items() if jobs}

    async def _ranked(
        self, song_ids: Iterable[str], request: PageRequest, columns: Columns
    ) -> dict[str, list[Any]]:
        """Up to `request.size + 1` jobs of each song within the request's bounds, in its
        direction, by song."""
        wanted = list(dict.fromkeys(song_ids))
        if not wanted:
            return {}
        statement = _ranked_jobs(
            None if columns is None else frozenset(columns),
            request.backwards,
            request.after is not None,
            request.before is not None,
            self.dialect,
        )
        parameters = {
            "song_ids": wanted,
            "per_song": request.size + 1,
            **request.bound_values(NEWEST_FIRST),
        }
        result = await self.session.execute(statement, parameters)
        grouped: dict[str, list[Any]] = {song_id: [] for song_id in wanted}
        for job in result.scalars().all() if columns is None else result.all():
            grouped[job.song_id].append(job)
        return grouped

    async def list(
        self, request: PageRequest, status: JobStatus | None = None, columns: Columns = None
    ) -> Page[Any]:
        """A page of all jobs, newest first, optionally of one status."""
        where = [] if status is None else [Job.status == status]
        return await self.page(request, NEWEST_FIRST, where, columns)

    async def count_for_songs(self, song_ids: Iterable[str]) -> dict[str, int]:
        """How many jobs each song has (0 for none), in one statement for all the songs."""
        wanted = list(dict.fromkeys(song_ids))
        if not wanted:
            return {}
        statement = (
            sa.select(Job.song_id, sa.func.count())
            .where(Job.song_id.in_(wanted))
            .group_by(Job.song_id)
        )
        counts = dict.fromkeys(wanted, 0)
        for song_id, count in await self.session.execute(statement):
            counts[song_id] = count
        return counts

    async def count_with_status(self, status: JobStatus | None = None) -> int:
        return await self.count([] if status is None else [Job.status == status])

    async def create(self, **values: Any) -> Job:
        job = await super().create(**values)
        await announce(self.session, job)
        return job

    async def update(self, row: Job, **values: Any) -> Job:
        job = await super().update(row, **values)
        await announce(self.session, job)
        return job

    async def get_for_update(self, job_id: str) -> Job | None:
        """The job, locked until the unit of work ends (SQLite's write lock already is)."""
        statement = (
            sa.select(Job)
            .where(Job.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def change(
        self,
        job: Job,
        *,
        status: JobStatus | None = None,
        progress: int | None = None,
        message: str | None = None,
        set_message: bool = False,
        lease: timedelta,
    ) -> Job:
        """Change a job the lifecycle's way (updateJob): refused moves change nothing.

        Moving a job to PROCESSING this way grants a lease with no worker, so the job
        returns to the queue if nothing finishes it; a final job drops its lease.
        """
        new_status = JobStatus(job.status) if status is None else status
        check_transition(JobStatus(job.status), new_status)
        values: dict[str, Any] = {"progress": checked_progress(job, new_status, progress)}
        if new_status != job.status:
            values["status"] = new_status
            if new_status == JobStatus.PROCESSING:
                values["claimed_by"] = None
                values["lease_expires_at"] = utcnow() + lease
            else:
                values["lease_expires_at"] = None
        if set_message:
            values["message"] = message
        return await self.update(job, **values)

    async def claim_next(
        self, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> Job | None:
        """Hand the oldest claimable job to `worker_id`, or None when there is none.

        Claimable: PENDING, or PROCESSING under a lease that lapsed (its worker died).
        One statement; on PostgreSQL its row lock skips rows other claimers hold, on
        SQLite the unit of work's write lock serialises claimers.
        """
        now = now or utcnow()
        # An alias, so the subquery reads jobs on its own instead of correlating to the
        # UPDATE's table.
        candidate = JOBS.alias("candidate")
        oldest = (
            sa.select(candidate.c.id)
            .where(
                sa.or_(
                    candidate.c.status == JobStatus.PENDING,
                    sa.and_(
                        candidate.c.status == JobStatus.PROCESSING,
                        candidate.c.lease_expires_at < now,
                    ),
                )
            )
            .order_by(candidate.c.created_at, candidate.c.id)
            .limit(1)
        )
        if self.dialect == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        claim = (
            sa.update(JOBS)
            .where(JOBS.c.id == oldest.scalar_subquery())
            # A reclaimed job starts over: the new worker reports its own progress.
            .values(
                status=JobStatus.PROCESSING,
                claimed_by=worker_id,
                lease_expires_at=now + lease,
                progress=0,
                message=None,
                updated_at=now,
            )
            .returning(*JOBS.c)
        )
        statement = sa.select(Job).from_statement(claim)
        job = (
            await self.session.scalars(statement, execution_options={"populate_existing": True})
        ).one_or_none()
        if job is not None:
            await announce(self.session, job)
        return job

    async def _held(self, job_id: str, worker_id: str, status: JobStatus) -> Job:
        """The job `worker_id` holds, locked, if it may move to `status`."""
        job = await self.get_for_update(job_id)
        if job is None:
            raise NotFound("job", job_id)
        if job.claimed_by != worker_id:
            raise ClaimNotHeld(job_id, worker_id)
        check_transition(JobStatus(job.status), status)
        return job

    async def report_progress(
        self,
        job_id: str,
        worker_id: str,
        progress: int,
        message: str | None,
        lease: timedelta,
    ) -> Job:
        """Record the holder's progress (never lower) and extend its lease.

        A holder whose lease lapsed may still report while no other worker has claimed
        the job: nobody else is working on it, so its work is not wasted.
        """
        job = await self._held(job_id, worker_id, JobStatus.PROCESSING)
        values: dict[str, Any] = {
            "progress": checked_progress(job, JobStatus.PROCESSING, progress),
            "lease_expires_at": utcnow() + lease,
        }
        if message is not None:
            values["message"] = message
        return await self.update(job, **values)

    async def complete(self, job_id: str, worker_id: str) -> Job:
        job = await self._held(job_id, worker_id, JobStatus.COMPLETED)
        return await self.update(
            job, status=JobStatus.COMPLETED, progress=100, lease_expires_at=None
        )

    async def fail(self, job_id: str, worker_id: str, message: str) -> Job:
        job = await self._held(job_id, worker_id, JobStatus.FAILED)
        return await self.update(
            job, status=JobStatus.FAILED, message=message, lease_expires_at=None
        )

    async def retry(self, song_id: str) -> Job:
        """A new PENDING job for a song whose newest job failed (or that has none yet)."""
        # Lock the song so two retries cannot both see the failed job as the newest.
        locked = sa.select(Song.id).where(Song.id == song_id).with_for_update()
        if await self.session.scalar(locked) is None:
            raise NotFound("song", song_id)
        latest = (await self.latest_jobs_for_songs([song_id])).get(song_id)
        if latest is not None and latest.status != JobStatus.FAILED:
            status = JobStatus(latest.status)
            raise InvalidTransition(
                status, f"Only a failed job can be retried; the newest job is {status.name}"
            )
        return await self.create(song_id=song_id)
