"""The users domain's dataloaders."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from graph.core.loaders import Loader
from persistence.models import User
from persistence.repositories import UserRepository


async def _users_by_id(session: AsyncSession, ids: Sequence[str]) -> list[User | None]:
    found = await UserRepository(session).get_many(ids)
    return [found.get(id) for id in ids]


user_by_id = Loader[str, User | None](_users_by_id)
