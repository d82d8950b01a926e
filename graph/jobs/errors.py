"""The jobs domain's expected failures."""

import strawberry

from graph.core.errors import Error
from graph.jobs.types import JobStatus
from persistence.errors import InvalidTransition


@strawberry.type(description="The job's lifecycle does not allow this change; nothing changed.")
class InvalidJobTransitionError(Error):
    current_status: JobStatus = strawberry.field(description="The job's status now.")

    @classmethod
    def of(cls, error: InvalidTransition) -> "InvalidJobTransitionError":
        return cls(message=error.message, current_status=JobStatus(error.current))


@strawberry.type(description="The worker does not hold this job's claim; nothing changed.")
class ClaimNotHeldError(Error):
    pass
