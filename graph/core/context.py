"""The per-request context: the database's units of work and fresh loaders."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from graph.core.loaders import Loaders
from graph.core.settings import AppSettings
from persistence.database import Database
from persistence.repositories import JobRepository, SongRepository, UserRepository


@dataclass(frozen=True, slots=True)
class Repositories:
    """The repositories of one session."""

    session: AsyncSession
    songs: SongRepository
    jobs: JobRepository
    users: UserRepository

    @classmethod
    def of(cls, session: AsyncSession) -> "Repositories":
        return cls(
            session, SongRepository(session), JobRepository(session), UserRepository(session)
        )


@dataclass
class Context:
    """Built once per request (or WebSocket connection) in the view's get_context."""

    request: Request | WebSocket
    response: Response | WebSocket | None
    db: Database
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db)

    @property
    def settings(self) -> "AppSettings":
        """The app's settings (create_app keeps them in app.state)."""
        settings: AppSettings = self.request.app.state.settings
        return settings

    def renew_loaders(self) -> None:
        """Forget every cached row: a long-lived connection does this before each event."""
        self.loaders = Loaders(self.db)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Repositories]:
        """Repositories over a session of their own, so sibling resolvers never share one."""
        async with self.db.session() as session:
            yield Repositories.of(session)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Repositories]:
        """Repositories inside one transaction: all of the block's writes, or none."""
        async with self.db.transaction() as session:
            yield Repositories.of(session)


Info = strawberry.Info[Context, None]
