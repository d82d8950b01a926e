"""The root types, composed from each domain, and the schema with its extensions."""

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import (
    AddValidationRules,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from graph.core.context import Info
from graph.core.errors import ErrorCodes, ParserCache
from graph.core.relay import Node, parse_global_id
from graph.jobs.mutations import JobMutation
from graph.jobs.queries import JobQuery
from graph.jobs.subscriptions import JobSubscription
from graph.jobs.types import Job
from graph.jobs.workers import WorkerMutation
from graph.songs.mutations import SongMutation
from graph.songs.queries import SongQuery
from graph.songs.types import Song
from graph.users.mutations import UserMutation
from graph.users.queries import UserQuery
from graph.users.types import User

MAX_QUERY_DEPTH = 12
VALIDATION_CACHE_SIZE = 512
# The depth rule is a class QueryDepthLimiter builds anew each time it is made, and the
# validation cache is keyed by the rules: built once here, so repeated documents hit it.
DEPTH_RULES = tuple(QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH).validation_rules)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global id (Relay), or null.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        from graph.core.relay import InvalidGlobalId

        parsed = parse_global_id(id)
        if parsed is None:
            raise InvalidGlobalId("id")
        type_name, db_id = parsed
        loaders = info.context.loaders
        if type_name == "Song":
            song = await loaders.song_by_id.load(db_id)
            return None if song is None else Song.from_model(song)
        if type_name == "Job":
            job = await loaders.job_by_id.load(db_id)
            return None if job is None else Job.from_model(job)
        if type_name == "User":
            async with info.context.read() as repos:
                user = await repos.users.get(db_id)
            return None if user is None else User.from_model(user)
        return None


@strawberry.type(description="Everything Songbook can be asked.")
class Query(NodeQuery, SongQuery, JobQuery, UserQuery):
    pass


@strawberry.type(description="Everything Songbook can be told to change.")
class Mutation(SongMutation, JobMutation, WorkerMutation, UserMutation):
    pass


@strawberry.type(description="Everything Songbook can tell a client as it happens.")
class Subscription(JobSubscription):
    pass


class OperationNameRequired(SchemaExtension):
    """A document of several operations must name the one to run (the spec's
    GetOperation); Strawberry alone would quietly run the first. Listed after
    ValidationCache, so its error joins the cached validation's."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        named = getattr(context, "_provided_operation_name", None) is not None
        if document is not None and not named:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                error = GraphQLError(
                    "The document holds several operations: name the one to run in operationName"
                )
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


class SongbookSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes logs the unexpected ones; clients' mistakes are not worth a traceback.
        return None


def build_schema() -> strawberry.Schema:
    return SongbookSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Song, Job, User],
        extensions=[
            ErrorCodes,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
            lambda: AddValidationRules(list(DEPTH_RULES)),
            OperationNameRequired,
        ],
    )


schema = build_schema()
