"""Reading jobs: one job, or a page of all jobs."""

from typing import Annotated

import strawberry

from graph.core.context import Info
from graph.core.errors import BadUserInput
from graph.core.relay import After, Before, Connection, First, Last, page_request
from graph.jobs.types import Job, JobStatus
from persistence.errors import ValidationError
from persistence.repositories import JobRepository


@strawberry.type
class JobQuery:
    @strawberry.field(description="The job with this id, or null.")
    async def job(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The job's global id.")],
    ) -> Job | None:
        key = Job.key_of(id)
        return None if key is None else await Job.resolve_node(info, key)

    @strawberry.field(description="All jobs, newest first, optionally of one status.")
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
        request = page_request(first, after, last, before)
        try:
            async with info.context.read() as repos:
                page = await repos(JobRepository).list(request, status)
        except ValidationError as error:
            raise BadUserInput.of(error) from None

        async def count() -> int:
            async with info.context.read() as repos:
                return await repos(JobRepository).count_with_status(status)

        return Connection[Job].from_page(page, Job.from_model, count)
