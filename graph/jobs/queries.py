"""Reading jobs: one job, or a page of all jobs."""

from typing import Annotated

import strawberry

from graph.core.context import Info, Repositories
from graph.core.errors import BadUserInput
from graph.core.reads import ById, Listed, Listing, listing, reads
from graph.core.relay import After, Before, Connection, First, Last, page_request
from graph.jobs.types import Job, JobStatus
from persistence.errors import ValidationError
from persistence.repositories import JobRepository
from persistence.repositories.base import Columns


async def list_jobs(
    repos: Repositories,
    columns: Columns,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    status: JobStatus | None,
) -> Listed:
    """A page of all jobs as `jobs` asks for it (both executors call this)."""
    request = page_request(first, after, last, before)
    try:
        page = await repos(JobRepository).list(request, status, columns)
    except ValidationError as error:
        raise BadUserInput.of(error) from None

    async def count(repos: Repositories) -> int:
        return await repos(JobRepository).count_with_status(status)

    return Listed(page, count)


@strawberry.type
class JobQuery:
    @strawberry.field(description="The job with this id, or null.", metadata=reads(ById(Job)))
    async def job(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The job's global id.")],
    ) -> Job | None:
        key = Job.key_of(id)
        return None if key is None else await Job.resolve_node(info, key)

    @strawberry.field(
        description="All jobs, newest first, optionally of one status.",
        metadata=reads(Listing(list_jobs)),
    )
    async def jobs(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        status: Annotated[
            JobStatus | None, strawberry.argument(description="Only jobs with this status.")
        ] = None,
    ) -> Connection[Job]:
        return await listing(
            info, list_jobs, first=first, after=after, last=last, before=before, status=status
        )
