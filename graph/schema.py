"""The schema: each domain's root fields composed into Query, Mutation and Subscription."""

from typing import Any

import strawberry
from graphql import GraphQLError

from graph import jobs, songs, users
from graph.core.domain import Domain
from graph.core.extensions import EXTENSIONS, Executor
from graph.core.fields import SCALAR_OVERRIDES
from graph.core.reads import NodeQuery

# A new domain is a folder under graph/ and one entry here.
DOMAINS: tuple[Domain, ...] = (songs.DOMAIN, jobs.DOMAIN, users.DOMAIN)


def _root(name: str, description: str, parts: list[type]) -> type:
    """One root type whose fields are those of every part, in order (pycon's
    `class Query(ConferenceQuery, ...)`, built from the domains)."""
    return strawberry.type(type(name, tuple(parts), {}), description=description)


Query = _root(
    "Query",
    "Everything Songbook can be asked.",
    [NodeQuery, *(q for d in DOMAINS for q in d.queries)],
)
Mutation = _root(
    "Mutation",
    "Everything Songbook can be told to change.",
    [m for d in DOMAINS for m in d.mutations],
)
Subscription = _root(
    "Subscription",
    "Everything Songbook can tell a client as it happens.",
    [s for d in DOMAINS for s in d.subscriptions],
)


class SongbookSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorCodes logs the unexpected ones; clients' mistakes are not worth a traceback.
        return None


schema = SongbookSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[t for d in DOMAINS for t in d.types],
    extensions=EXTENSIONS,
    execution_context_class=Executor,
    scalar_overrides=SCALAR_OVERRIDES,
)
