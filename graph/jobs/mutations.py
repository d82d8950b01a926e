"""Recording a job's state."""

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import NotFoundErrorType, ValidationErrorType, not_found, validation_error
from graph.jobs.types import Job
from graph.relay import parse_global_id
from persistence.errors import ValidationError
from persistence.models import JobStatus
from persistence.validation import clean_progress, clean_text


@strawberry.input(description="Changes to a job; fields left out stay as they are.")
class UpdateJobInput:
    id: strawberry.ID = strawberry.field(description="The job to change.")
    status: JobStatus | None = strawberry.UNSET
    progress: int | None = strawberry.UNSET
    message: str | None = strawberry.UNSET


@strawberry.type(description="The job was changed.")
class UpdateJobSuccess:
    job: Job = strawberry.field(description="The job as it is now.")


UpdateJobPayload = Annotated[
    UpdateJobSuccess | ValidationErrorType | NotFoundErrorType,
    strawberry.union("UpdateJobPayload", description="The result of updateJob."),
]


def job_id_of(global_id: str, field: str = "id") -> str | None:
    """The database id of a Job's global id; None for another type's id."""
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise ValidationError(field, f"{field} is not a valid id")
    return parsed[1] if parsed[0] == "Job" else None


@strawberry.type
class JobMutation:
    @strawberry.mutation(description="Record a job's status, progress or message.")
    async def update_job(self, info: Info, input: UpdateJobInput) -> UpdateJobPayload:
        try:
            job_id = job_id_of(input.id)
            if job_id is None:
                return not_found(input.id, "job")
            values: dict[str, object] = {}
            if input.status is not strawberry.UNSET:
                if input.status is None:
                    raise ValidationError("status", "status must not be null")
                values["status"] = input.status
            if input.progress is not strawberry.UNSET:
                if input.progress is None:
                    raise ValidationError("progress", "progress must not be null")
                values["progress"] = clean_progress(input.progress)
            if input.message is not strawberry.UNSET:
                values["message"] = clean_text("message", input.message)
            async with info.context.write() as repos:
                row = await repos.jobs.get(job_id)
                if row is None:
                    return not_found(input.id, "job")
                row = await repos.jobs.update(row, **values)
        except ValidationError as error:
            return validation_error(error)
        info.context.loaders.prime_job(row)
        return UpdateJobSuccess(job=Job.from_model(row))
