"""Job, a song's processing run, and its status."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import strawberry

from graph.core.fields import FromColumns, column, described_enum
from graph.core.loaders import Loader
from graph.core.reads import to_one
from graph.core.relay import Node
from graph.jobs.loaders import job_by_id
from persistence import models

if TYPE_CHECKING:
    from graph.songs.types import Song

# The data layer's enum is the schema's: registered here, so persistence stays unaware.
JobStatus = models.JobStatus
described_enum(
    JobStatus,
    description="Where a job is in its lifecycle.",
    values={
        JobStatus.PENDING: "Waiting for a worker to claim it.",
        JobStatus.PROCESSING: "Claimed by a worker, which reports its progress.",
        JobStatus.COMPLETED: "Finished: the stems are ready. Final.",
        JobStatus.FAILED: "Given up, with the reason in its message. Final.",
    },
)


@strawberry.type(description="A run that splits a song into vocals and instrumental stems.")
class Job(Node, FromColumns):
    status: models.JobStatus = column(
        models.Job.status, description="Where the job is in its lifecycle."
    )
    progress: int = column(models.Job.progress, description="How far the job has got, 0 to 100.")
    message: str | None = column(
        models.Job.message, description="The worker's latest step, or why the job failed."
    )
    claimed_by: str | None = column(
        models.Job.claimed_by,
        description="The worker that claimed the job, while or since it processed it.",
    )
    lease_expires_at: datetime | None = column(
        models.Job.lease_expires_at,
        description=(
            "Until when the worker holds a PROCESSING job; once past, another worker may claim it."
        ),
    )
    created_at: datetime = column(models.Job.created_at, description="When the job was created.")
    updated_at: datetime = column(models.Job.updated_at, description="When the job last changed.")

    # The Song whose id is the job's song_id, found by Song's own loader: the songs domain
    # builds on this one, not the reverse.
    song: Annotated["Song", strawberry.lazy("graph.songs.types")] = to_one(
        key=models.Job.song_id, description="The song this job processes."
    )
    row: strawberry.Private[Any] = None  # the row the object was read from
    by_id: ClassVar[Loader[str, Any]] = job_by_id
