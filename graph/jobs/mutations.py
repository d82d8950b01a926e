"""Changing jobs along their lifecycle: recording a job's state, retrying a failed job."""

from typing import Annotated, TypeVar

import strawberry

from graph.core.context import Info
from graph.core.errors import InvalidInput, NotFoundError
from graph.core.permissions import IsAdmin, IsEditor
from graph.core.relay import Node
from graph.jobs.errors import InvalidJobTransitionError
from graph.jobs.loaders import prime_job
from graph.jobs.types import Job, JobStatus
from persistence.errors import InvalidTransition, NotFound, ValidationError
from persistence.repositories import JobRepository
from persistence.validation import clean_text

T = TypeVar("T")


@strawberry.input(description="Changes to a job; fields left out stay as they are.")
class UpdateJobInput:
    id: strawberry.ID = strawberry.field(description="The job to change.")
    status: JobStatus | None = strawberry.field(
        default=strawberry.UNSET,
        description="PENDING -> PROCESSING -> COMPLETED or FAILED; the last two are final.",
    )
    progress: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="0 to 100; never lower while PROCESSING; 100 once COMPLETED.",
    )
    message: str | None = strawberry.field(
        default=strawberry.UNSET, description="The latest step, or why the job failed."
    )


@strawberry.type(description="The job was changed.")
class UpdateJobSuccess:
    job: Job = strawberry.field(description="The job as it is now.")


@strawberry.type(description="A new pending job was queued for the song.")
class RetryJobSuccess:
    job: Job = strawberry.field(description="The new PENDING job.")


UpdateJobPayload = Annotated[
    UpdateJobSuccess | InvalidInput | NotFoundError | InvalidJobTransitionError,
    strawberry.union("UpdateJobPayload", description="The result of updateJob."),
]
RetryJobPayload = Annotated[
    RetryJobSuccess | InvalidInput | NotFoundError | InvalidJobTransitionError,
    strawberry.union("RetryJobPayload", description="The result of retryJob."),
]


def _not_null(value: T | None, field: str) -> T:
    if value is None:
        raise ValidationError(field, f"{field} must not be null")
    return value


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description=(
            "Admins only: record a job's status, progress or message, as the lifecycle "
            "allows (bypassing workers' claims); a refused change changes nothing."
        ),
    )
    async def update_job(
        self,
        info: Info,
        input: Annotated[
            UpdateJobInput, strawberry.argument(description="The job and what to change.")
        ],
    ) -> UpdateJobPayload:
        job_id = Job.key_of(input.id)
        if job_id is None:
            return NotFoundError.of(input.id, "job")
        try:
            status: JobStatus | None = None
            if input.status is not strawberry.UNSET:
                status = _not_null(input.status, "status")
            progress = None
            if input.progress is not strawberry.UNSET:
                progress = _not_null(input.progress, "progress")
            set_message = input.message is not strawberry.UNSET
            message = clean_text("message", input.message) if set_message else None
            async with info.context.write() as repos:
                jobs = repos(JobRepository)
                row = await jobs.get_for_update(job_id)
                if row is None:
                    return NotFoundError.of(input.id, "job")
                row = await jobs.change(
                    row,
                    status=status,
                    progress=progress,
                    message=message,
                    set_message=set_message,
                    lease=info.context.settings.job_lease,
                )
        except ValidationError as error:
            return InvalidInput.of(error)
        except InvalidTransition as error:
            return InvalidJobTransitionError.of(error)
        prime_job(info.context.loaders, row)
        return UpdateJobSuccess(job=Job.from_model(row))

    @strawberry.mutation(
        permission_classes=[IsEditor],
        description=(
            "Queue a new PENDING job for a song whose newest job FAILED (or that has none); "
            "the failed job stays in the song's history."
        ),
    )
    async def retry_job(
        self,
        info: Info,
        song_id: Annotated[
            strawberry.ID, strawberry.argument(description="The song whose job to retry.")
        ],
    ) -> RetryJobPayload:
        song_key = Node.types["Song"].key_of(song_id, "songId")
        if song_key is None:
            return NotFoundError.of(song_id, "song")
        try:
            async with info.context.write() as repos:
                row = await repos(JobRepository).retry(song_key)
        except NotFound:
            return NotFoundError.of(song_id, "song")
        except InvalidTransition as error:
            return InvalidJobTransitionError.of(error)
        prime_job(info.context.loaders, row)
        return RetryJobSuccess(job=Job.from_model(row))
