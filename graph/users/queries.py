"""Reading users."""

import strawberry

from graph.core.context import Info
from graph.core.relay import from_global_id
from graph.users.types import User


@strawberry.type
class UserQuery:
    @strawberry.field(description="The user with this id, or null.")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        user_id = from_global_id(id, "User")
        if user_id is None:
            return None
        async with info.context.read() as repos:
            row = await repos.users.get(user_id)
        return None if row is None else User.from_model(row)
