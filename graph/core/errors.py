"""Errors as data for expected failures, and stable codes for everything else.

Three kinds, three names:
- `Error` and its members (`InvalidInput`, `NotFoundError`, and each domain's own) are
  payload union members: a mutation's expected failures, which clients switch on by
  `__typename`.
- `BadUserInput` is a top-level error (`extensions.code` BAD_USER_INPUT) for a malformed
  argument: an id that is not an id, a cursor that is not a cursor.
- The data layer's own errors (persistence.errors) are translated into one of these by
  the resolver, or given a code by the ErrorCodes extension (graph/core/extensions.py).
"""

import strawberry
from graphql import GraphQLError

from persistence import errors as domain


@strawberry.interface(description="A failure the client can act on.")
class Error:
    message: str = strawberry.field(description="What went wrong, in words for people.")


@strawberry.type(name="ValidationError", description="An input value breaks a rule.")
class InvalidInput(Error):
    field: str = strawberry.field(description="The input field at fault, in camelCase.")

    @classmethod
    def of(cls, error: domain.ValidationError) -> "InvalidInput":
        return cls(message=error.message, field=camel_case(error.field))


@strawberry.type(description="No object has the given id.")
class NotFoundError(Error):
    id: strawberry.ID = strawberry.field(description="The id that was not found.")

    @classmethod
    def of(cls, id: str, entity: str) -> "NotFoundError":
        return cls(message=f"No {entity} has the id {id}", id=strawberry.ID(id))


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class BadUserInput(GraphQLError):
    """A malformed argument: the client's mistake, reported as BAD_USER_INPUT."""

    def __init__(self, message: str, field: str | None = None) -> None:
        extensions: dict[str, object] = {"code": "BAD_USER_INPUT"}
        if field is not None:
            extensions["field"] = camel_case(field)
        super().__init__(message, extensions=extensions)

    @classmethod
    def of(cls, error: domain.ValidationError) -> "BadUserInput":
        return cls(error.message, error.field)
