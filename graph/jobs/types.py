"""Job, a song's processing run, mapped from the ORM in one place."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.core.context import Info
from graph.core.relay import Node, to_global_id
from persistence import models

if TYPE_CHECKING:
    from graph.songs.types import Song

# The data layer's enum is the schema's: registered here, so persistence stays unaware.
JobStatus = strawberry.enum(models.JobStatus, description="Where a job is in its lifecycle.")


@strawberry.type(description="A run that splits a song into vocals and instrumental stems.")
class Job(Node):
    db_id: strawberry.Private[str]
    song_db_id: strawberry.Private[str]
    status: models.JobStatus = strawberry.field(description="Where the job is in its lifecycle.")
    progress: int = strawberry.field(description="How far the job has got, 0 to 100.")
    message: str | None = strawberry.field(
        description="The worker's latest step, or why the job failed."
    )
    claimed_by: str | None = strawberry.field(
        description="The worker that claimed the job, while or since it processed it."
    )
    lease_expires_at: datetime | None = strawberry.field(
        description=(
            "Until when the worker holds a PROCESSING job; once past, another worker may claim it."
        )
    )
    created_at: datetime = strawberry.field(description="When the job was created.")
    updated_at: datetime = strawberry.field(description="When the job last changed.")

    @classmethod
    def from_model(cls, row: models.Job) -> "Job":
        return cls(
            id=to_global_id("Job", row.id),
            db_id=row.id,
            song_db_id=row.song_id,
            status=row.status,
            progress=row.progress,
            message=row.message,
            claimed_by=row.claimed_by,
            lease_expires_at=row.lease_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="The song this job processes.")
    async def song(self, info: Info) -> Annotated["Song", strawberry.lazy("graph.songs.types")]:
        from graph.songs.types import Song

        row = await info.context.loaders.song_by_id.load(self.song_db_id)
        if row is None:  # deleted by a concurrent request after the job was read
            raise LookupError("the job's song no longer exists")
        return Song.from_model(row)
