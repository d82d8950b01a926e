"""The per-request context: settings, the database's units of work, and loaders."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.websockets import WebSocket

from graph.core.documents import DocumentSource
from graph.core.identity import Identity, Role
from graph.core.loaders import RequestLoaders
from graph.core.metrics import RequestRecord
from graph.core.settings import Settings
from persistence.database import Database, Reads
from persistence.events import JobEvents
from persistence.repositories import Repository

R = TypeVar("R", bound=Repository[Any])
# Until a request's caller is known.
NOBODY = Identity.anonymous(Role.NONE)


class Repositories:
    """The repositories of one session, each made when first asked for:
    `repos(SongRepository).create(...)`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._made: dict[type[Any], Any] = {}

    def __call__(self, kind: type[R]) -> R:
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = kind(self.session)
        assert isinstance(made, kind)
        return made


@dataclass
class Context:
    """Built once per request (or WebSocket connection) in the view's get_context."""

    request: Request | WebSocket
    db: Database
    settings: Settings
    events: JobEvents
    # The rules that turn a request into its document (graph/server/documents.py).
    documents: DocumentSource | None = None
    # Who is asking (graph/server/auth.py); a WebSocket's is decided by its connection_init.
    identity: Identity = NOBODY
    # A WebSocket's connection_init payload, as Strawberry hands it over.
    connection_params: dict[str, object] | None = None
    # What an HTTP request did, for its metrics (graph/core/metrics.py).
    record: RequestRecord | None = None
    # The write position an HTTP query must see (the Songbook-Read-After header), if any.
    read_after: int | None = None
    # Whether this request's query may read from a replica (an HTTP query only: a
    # mutation reads its own writes, a subscription the events of the primary).
    may_use_replica: bool = False
    # Where reads go: the primary until `read_from_replica` picks one.
    reads: Reads = field(init=False)
    loaders: RequestLoaders = field(init=False)

    def __post_init__(self) -> None:
        self.reads = self.db.primary
        self.loaders = RequestLoaders(self.db.primary)

    def renew_loaders(self) -> None:
        """Forget every cached row: a long-lived connection does this before each event."""
        self.loaders = RequestLoaders(self.reads)

    async def read_from_replica(self) -> None:
        """Read the rest of this query from a replica, if it may and one is usable (and
        has replayed past `read_after`): called once its operation is known to be a query."""
        if self.may_use_replica and self.db.replicas:
            self.reads = await self.db.replicas.choose(self.read_after)
            self.loaders = RequestLoaders(self.reads)

    def read_from_primary(self) -> None:
        """Forget the replica and every row read from it: the query starts again on the
        primary."""
        self.may_use_replica = False
        self.reads = self.db.primary
        self.loaders = RequestLoaders(self.reads)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Repositories]:
        """Repositories over a read-only session of their own (no transaction, so no BEGIN
        or ROLLBACK round trips), so sibling resolvers never share one."""
        async with self.reads.session() as session:
            yield Repositories(session)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Repositories]:
        """Repositories inside one transaction: all of the block's writes, or none."""
        async with self.db.transaction() as session:
            yield Repositories(session)


Info = strawberry.Info[Context, None]
