"""Live job updates: every committed change of the jobs a client watches."""

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError

from graph.core.context import Info
from graph.core.errors import UserInputError
from graph.core.relay import from_global_id
from graph.jobs.types import Job
from persistence.errors import SubscriberTooSlow
from persistence.events import JobEvent


def _id_of(global_id: strawberry.ID | None, type_name: str, argument: str) -> str | None:
    if global_id is None:
        return None
    id = from_global_id(global_id, type_name, argument)
    if id is None:
        raise UserInputError(f"{argument} is not the id of a {type_name}", argument)
    return id


@strawberry.type
class JobSubscription:
    @strawberry.subscription(
        description=(
            "Each change of the matching jobs, once it has committed: of one job, of one "
            "song's jobs, or of every job when neither is given. A subscriber that falls "
            "too far behind receives an error (code SUBSCRIBER_TOO_SLOW) and is ended."
        )
    )
    async def job_updated(
        self,
        info: Info,
        job_id: strawberry.ID | None = None,
        song_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[Job, None]:
        job_db_id = _id_of(job_id, "Job", "jobId")
        song_db_id = _id_of(song_id, "Song", "songId")

        def matches(event: JobEvent) -> bool:
            return (job_db_id is None or event.id == job_db_id) and (
                song_db_id is None or event.song_id == song_db_id
            )

        context = info.context
        with context.db.job_events.subscribe(matches, context.settings.subscriber_queue) as events:
            try:
                async for event in events:
                    row = event.to_model()
                    # The connection lives long; its loaders must not answer from rows
                    # cached for an earlier event (Job.song would show a stale song).
                    context.renew_loaders()
                    context.loaders.prime_job(row)
                    yield Job.from_model(row)
            except SubscriberTooSlow as error:
                raise GraphQLError(
                    error.message, extensions={"code": "SUBSCRIBER_TOO_SLOW"}
                ) from None
