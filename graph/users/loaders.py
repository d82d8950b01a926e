"""The users domain's dataloaders."""

from collections.abc import Sequence
from typing import Any

from graph.core.loaders import Loader
from persistence.models import User
from persistence.repositories import UserRepository
from persistence.repositories.base import Columns, Reader


async def _users_by_id(session: Reader, ids: Sequence[str], columns: Columns) -> list[Any]:
    found = await UserRepository(session).get_many(ids, columns)
    return [found.get(id) for id in ids]


user_by_id = Loader[str, User | None](_users_by_id)
