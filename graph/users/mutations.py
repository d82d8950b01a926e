"""Signing users up."""

from typing import Annotated

import strawberry

from graph.core.context import Info
from graph.core.errors import Error, InvalidInput
from graph.core.fields import column
from graph.core.permissions import IsAdmin
from graph.users.types import User
from persistence import models
from persistence.errors import Conflict, ValidationError
from persistence.repositories import UserRepository
from persistence.validation import clean_user


@strawberry.input(description="A new user.")
class CreateUserInput:
    username: str = column(
        models.User.username, description="3-64 letters, digits, dots, dashes or _."
    )
    email: str | None = column(models.User.email, default=None, description="An email address.")


@strawberry.type(description="The user was created.")
class CreateUserSuccess:
    user: User = strawberry.field(description="The new user.")


@strawberry.type(description="The username or email is taken.")
class UserConflictError(Error):
    field: str = strawberry.field(description="`username` or `email`.")


CreateUserPayload = Annotated[
    CreateUserSuccess | InvalidInput | UserConflictError,
    strawberry.union("CreateUserPayload", description="The result of createUser."),
]


@strawberry.type
class UserMutation:
    @strawberry.mutation(permission_classes=[IsAdmin], description="Create a user (admins only).")
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The new user.")],
    ) -> CreateUserPayload:
        try:
            values = clean_user(input.username, input.email)
            async with info.context.write() as repos:
                row = await repos(UserRepository).create(**values)
        except ValidationError as error:
            return InvalidInput.of(error)
        except Conflict as error:
            field = "email" if error.constraint == "uq_users_email" else "username"
            return UserConflictError(message=f"That {field} is already taken", field=field)
        return CreateUserSuccess(user=User.from_model(row))
