"""User, mapped from the ORM in one place."""

from datetime import datetime

import strawberry

from graph.core.relay import Node, to_global_id
from persistence import models


@strawberry.type(description="A person who owns songs in the library.")
class User(Node):
    username: str = strawberry.field(description="The user's unique name.")
    email: str | None = strawberry.field(description="The user's email address.")
    created_at: datetime = strawberry.field(description="When the user signed up.")

    @classmethod
    def from_model(cls, row: models.User) -> "User":
        return cls(
            id=to_global_id("User", row.id),
            username=row.username,
            email=row.email,
            created_at=row.created_at,
        )
