"""The job lifecycle: PENDING -> PROCESSING -> COMPLETED | FAILED, and nothing else.

COMPLETED and FAILED are final. Progress runs 0..100, never goes down while a job is
PROCESSING, and is 100 once it is COMPLETED. These checks run on the row as read inside
the unit of work that changes it, so two concurrent changes cannot both pass them.
"""

from persistence.errors import InvalidTransition, ValidationError
from persistence.models import Job, JobStatus

NEXT_STATUSES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


def status_name(status: JobStatus) -> str:
    return status.name


def check_transition(current: JobStatus, new: JobStatus) -> None:
    """Refuse any move the lifecycle does not allow, and any change to a final job."""
    if current in FINAL_STATUSES:
        raise InvalidTransition(
            current, f"The job is {status_name(current)}, which is final; it cannot change"
        )
    if new != current and new not in NEXT_STATUSES[current]:
        raise InvalidTransition(
            current,
            f"A {status_name(current)} job cannot become {status_name(new)}",
        )


def checked_progress(job: Job, status: JobStatus, progress: int | None) -> int:
    """The job's progress after a change to `status` with `progress` asked for (or not)."""
    if status == JobStatus.COMPLETED:
        if progress is not None and progress != 100:
            raise ValidationError("progress", "a completed job's progress is 100")
        return 100
    if progress is None:
        return job.progress
    if not 0 <= progress <= 100:
        raise ValidationError("progress", "progress must be between 0 and 100")
    if status == JobStatus.PENDING and progress != job.progress:
        raise ValidationError("progress", "a pending job has no progress to report")
    if job.status == JobStatus.PROCESSING == status and progress < job.progress:
        raise ValidationError(
            "progress", f"progress cannot go down (it is {job.progress}, not {progress})"
        )
    if status == JobStatus.FAILED and progress != job.progress:
        raise ValidationError("progress", "a failing job keeps the progress it reached")
    return progress
