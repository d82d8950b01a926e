"""Reading users."""

from typing import Annotated

import strawberry

from graph.core.context import Info
from graph.users.types import User


@strawberry.type
class UserQuery:
    @strawberry.field(description="The user with this id, or null.")
    async def user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The user's global id.")],
    ) -> User | None:
        key = User.key_of(id)
        return None if key is None else await User.resolve_node(info, key)

    @strawberry.field(
        description="The caller's own user: null for anonymous callers and API tokens."
    )
    async def viewer(self, info: Info) -> User | None:
        user_id = info.context.identity.user_id
        return None if user_id is None else await User.resolve_node(info, user_id)
