"""User, a person who owns songs."""

from datetime import datetime
from typing import Self

import strawberry

from graph.core.context import Info
from graph.core.fields import FromColumns, column
from graph.core.permissions import IsSelfOrAdmin
from graph.core.relay import Node
from graph.users.loaders import user_by_id
from persistence import models


@strawberry.type(description="A person who owns songs in the library.")
class User(Node, FromColumns):
    username: str = column(models.User.username, description="The user's unique name.")
    email: str | None = column(
        models.User.email,
        description="The user's email address: visible to that user and to admins only.",
        permission_classes=[IsSelfOrAdmin],
    )
    created_at: datetime = column(models.User.created_at, description="When the user signed up.")

    @classmethod
    def from_model(cls, row: models.User) -> Self:
        return cls.from_columns(row, id=cls.global_id(row.id))

    @classmethod
    async def resolve_node(cls, info: Info, key: str) -> Self | None:
        row = await info.context.loaders.load(user_by_id, key)
        return None if row is None else cls.from_model(row)
