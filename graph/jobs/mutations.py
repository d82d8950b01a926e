"""Changing jobs along their lifecycle: recording a job's state, retrying a failed job."""

from typing import Annotated, TypeVar

import strawberry

from graph.core.context import Info
from graph.core.errors import (
    Error,
    NotFoundErrorType,
    ValidationErrorType,
    not_found,
    validation_error,
)
from graph.core.relay import parse_global_id
from graph.jobs.types import Job
from persistence import models
from persistence.errors import InvalidTransition, NotFound, ValidationError
from persistence.models import JobStatus
from persistence.validation import clean_text

T = TypeVar("T")


@strawberry.type(description="The job's lifecycle does not allow this change; nothing changed.")
class InvalidJobTransitionError(Error):
    current_status: models.JobStatus = strawberry.field(description="The job's status now.")

    @classmethod
    def of(cls, error: InvalidTransition) -> "InvalidJobTransitionError":
        return cls(message=error.message, current_status=models.JobStatus(error.current))


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
    UpdateJobSuccess | ValidationErrorType | NotFoundErrorType | InvalidJobTransitionError,
    strawberry.union("UpdateJobPayload", description="The result of updateJob."),
]
RetryJobPayload = Annotated[
    RetryJobSuccess | ValidationErrorType | NotFoundErrorType | InvalidJobTransitionError,
    strawberry.union("RetryJobPayload", description="The result of retryJob."),
]


def job_id_of(global_id: str, field: str = "id") -> str | None:
    """The database id of a Job's global id; None for another type's id."""
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise ValidationError(field, f"{field} is not a valid id")
    return parsed[1] if parsed[0] == "Job" else None


def _not_null(value: T | None, field: str) -> T:
    if value is None:
        raise ValidationError(field, f"{field} must not be null")
    return value


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        description=(
            "Record a job's status, progress or message, as the lifecycle allows: a refused "
            "change changes nothing."
        )
    )
    async def update_job(self, info: Info, input: UpdateJobInput) -> UpdateJobPayload:
        try:
            job_id = job_id_of(input.id)
            if job_id is None:
                return not_found(input.id, "job")
            status = None
            if input.status is not strawberry.UNSET:
                status = _not_null(input.status, "status")
            progress = None
            if input.progress is not strawberry.UNSET:
                progress = _not_null(input.progress, "progress")
            set_message = input.message is not strawberry.UNSET
            message = clean_text("message", input.message) if set_message else None
            async with info.context.write() as repos:
                row = await repos.jobs.get_for_update(job_id)
                if row is None:
                    return not_found(input.id, "job")
                row = await repos.jobs.change(
                    row,
                    status=status,
                    progress=progress,
                    message=message,
                    set_message=set_message,
                    lease=info.context.settings.job_lease,
                )
        except ValidationError as error:
            return validation_error(error)
        except InvalidTransition as error:
            return InvalidJobTransitionError.of(error)
        info.context.loaders.prime_job(row)
        return UpdateJobSuccess(job=Job.from_model(row))

    @strawberry.mutation(
        description=(
            "Queue a new PENDING job for a song whose newest job FAILED (or that has none); "
            "the failed job stays in the song's history."
        )
    )
    async def retry_job(self, info: Info, song_id: strawberry.ID) -> RetryJobPayload:
        parsed = parse_global_id(song_id)
        if parsed is None:
            return validation_error(ValidationError("song_id", "songId is not a valid id"))
        if parsed[0] != "Song":
            return not_found(song_id, "song")
        try:
            async with info.context.write() as repos:
                row = await repos.jobs.retry(parsed[1])
        except NotFound:
            return not_found(song_id, "song")
        except InvalidTransition as error:
            return InvalidJobTransitionError.of(error)
        info.context.loaders.prime_job(row)
        return RetryJobSuccess(job=Job.from_model(row))
