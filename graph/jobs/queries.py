"""Reading jobs: one job, or a page of all jobs."""

import strawberry

from graph.core.context import Info
from graph.core.errors import UserInputError
from graph.core.relay import Connection, from_global_id
from graph.jobs.types import Job
from persistence.errors import ValidationError
from persistence.models import JobStatus
from persistence.pagination import PageRequest


@strawberry.type
class JobQuery:
    @strawberry.field(description="The job with this id, or null.")
    async def job(self, info: Info, id: strawberry.ID) -> Job | None:
        job_id = from_global_id(id, "Job")
        if job_id is None:
            return None
        row = await info.context.loaders.job_by_id.load(job_id)
        return None if row is None else Job.from_model(row)

    @strawberry.field(description="All jobs, newest first, optionally of one status.")
    async def jobs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: JobStatus | None = None,
    ) -> Connection[Job]:
        try:
            async with info.context.read() as repos:
                page = await repos.jobs.list(PageRequest(first=first, after=after), status)
        except ValidationError as error:
            raise UserInputError(error.message, error.field) from None

        async def count() -> int:
            async with info.context.read() as repos:
                return await repos.jobs.count_with_status(status)

        return Connection[Job].from_page(page, Job.from_model, count)
