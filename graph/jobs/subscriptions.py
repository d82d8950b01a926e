"""Live job updates: every committed change of the jobs a client watches."""

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from graphql import GraphQLError

from graph.core.context import Info
from graph.core.errors import BadUserInput
from graph.core.metrics import SUBSCRIPTIONS
from graph.core.relay import GlobalId, Node
from graph.jobs.loaders import prime_job
from graph.jobs.types import Job
from persistence.errors import DatabaseUnavailable, SubscriberTooSlow
from persistence.events import JobEvent


def _key(global_id: strawberry.ID | None, type_name: str, argument: str) -> str | None:
    """The key to watch. A subscription to another type's object would never hear a
    thing, silently: unlike a query's null, that is refused."""
    if global_id is None:
        return None
    key = GlobalId.decode(global_id, argument).key_for(Node.types[type_name])
    if key is None:
        raise BadUserInput(f"{argument} is not the id of a {type_name}", argument)
    return key


@strawberry.type
class JobSubscription:
    @strawberry.subscription(
        description=(
            "Each change of the matching jobs, once it has committed: of one job, of one "
            "song's jobs, or of every job when neither is given. A subscriber that falls "
            "too far behind receives an error (code SUBSCRIBER_TOO_SLOW) and is ended; so "
            "is every subscriber when changes may have been missed because the database "
            "was unavailable (code DATABASE_UNAVAILABLE)."
        )
    )
    async def job_updated(
        self,
        info: Info,
        job_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this job's changes.")
        ] = None,
        song_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only changes of this song's jobs."),
        ] = None,
    ) -> AsyncGenerator[Job, None]:
        job_key = _key(job_id, "Job", "jobId")
        song_key = _key(song_id, "Song", "songId")

        def matches(event: JobEvent) -> bool:
            return (job_key is None or event.id == job_key) and (
                song_key is None or event.song_id == song_key
            )

        context = info.context
        with (
            context.events.subscribe(matches, context.settings.subscriber_queue) as events,
            SUBSCRIPTIONS.track_inprogress(),
        ):
            try:
                async for event in events:
                    row = event.to_model()
                    # The connection lives long; its loaders must not answer from rows
                    # cached for an earlier event (Job.song would show a stale song).
                    context.renew_loaders()
                    prime_job(context.loaders, row)
                    yield Job.from_model(row)
            except SubscriberTooSlow as error:
                raise GraphQLError(
                    error.message, extensions={"code": "SUBSCRIBER_TOO_SLOW"}
                ) from None
            except DatabaseUnavailable:
                raise GraphQLError(
                    "Live updates stopped: the database is unavailable, and changes may have "
                    "been missed. Subscribe again, then read the jobs you follow.",
                    extensions={"code": "DATABASE_UNAVAILABLE"},
                ) from None
