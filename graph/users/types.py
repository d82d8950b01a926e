"""User, a person who owns songs."""

from datetime import datetime
from typing import Any, ClassVar

import strawberry

from graph.core.fields import FromColumns, column
from graph.core.loaders import Loader
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

    row: strawberry.Private[Any] = None  # the row the user was read from
    by_id: ClassVar[Loader[str, Any]] = user_by_id
