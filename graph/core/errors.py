"""Errors as data (union members implementing `Error`) and stable codes for the rest.

Expected failures of a mutation are members of its payload union, so clients switch on
`__typename`. Everything else becomes a top-level error whose `extensions.code` is stable
and whose message never carries a stack trace, SQL or a file path.
"""

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry.extensions
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from persistence import errors as domain

if TYPE_CHECKING:
    from graph.songs.types import Song

logger = logging.getLogger("songbook.graph")


@strawberry.interface(description="A failure the client can act on.")
class Error:
    message: str = strawberry.field(description="What went wrong, in words for people.")


@strawberry.type(name="ValidationError", description="An input value breaks a rule.")
class ValidationErrorType(Error):
    field: str = strawberry.field(description="The input field at fault, in camelCase.")


@strawberry.type(description="Another song already has this YouTube id.")
class ConflictError(Error):
    existing_song: Annotated["Song", strawberry.lazy("graph.songs.types")] | None = (
        strawberry.field(description="The song that holds the YouTube id.")
    )


@strawberry.type(name="NotFoundError", description="No object has the given id.")
class NotFoundErrorType(Error):
    id: strawberry.ID = strawberry.field(description="The id that was not found.")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def validation_error(error: domain.ValidationError) -> ValidationErrorType:
    return ValidationErrorType(message=error.message, field=_camel(error.field))


def not_found(id: str, entity: str) -> NotFoundErrorType:
    return NotFoundErrorType(message=f"No {entity} has the id {id}", id=strawberry.ID(id))


class UserInputError(GraphQLError):
    """A malformed argument of a query: the client's mistake, reported as BAD_USER_INPUT."""

    def __init__(self, message: str, field: str | None = None) -> None:
        extensions: dict[str, object] = {"code": "BAD_USER_INPUT"}
        if field is not None:
            extensions["field"] = field
        super().__init__(message, extensions=extensions)


def _coded(error: GraphQLError, message: str, code: str, **more: object) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), **more, "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Give every error a stable `extensions.code` and hide what clients must not see."""

    def __init__(self) -> None:
        self.executing = False

    def on_execute(self) -> Iterator[None]:
        self.executing = True
        yield

    def on_operation(self) -> Iterator[None]:
        self.executing = False
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self.classify(error) for error in result.errors]

    def classify(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GraphQLError):
            # Ours carry a code; graphql-core's own (variable coercion) are bad input.
            code = (original.extensions or {}).get("code", "BAD_USER_INPUT")
            return _coded(error, error.message, str(code))
        if isinstance(original, domain.DatabaseUnavailable):
            return _coded(error, "The database is unavailable", "DATABASE_UNAVAILABLE")
        if isinstance(original, domain.ValidationError):
            return _coded(error, original.message, "BAD_USER_INPUT", field=_camel(original.field))
        if isinstance(original, domain.NotFound):
            return _coded(error, original.message, "NOT_FOUND")
        if original is not None:
            logger.error("Unexpected error in a resolver", exc_info=original)
            return _coded(error, "Internal server error", "INTERNAL_SERVER_ERROR")
        if (error.extensions or {}).get("code"):
            return error
        if self.execution_context.graphql_document is None:
            return _coded(error, error.message, "GRAPHQL_PARSE_FAILED")
        if not self.executing:
            return _coded(error, error.message, "GRAPHQL_VALIDATION_FAILED")
        if error.path is None:
            return _coded(error, error.message, "BAD_USER_INPUT")
        return _coded(error, error.message, "INTERNAL_SERVER_ERROR")


class ParserCache(strawberry.extensions.ParserCache):
    """Strawberry's parser cache, letting syntax errors reach the result as errors.

    The stock extension parses before Strawberry's own error handling is in place, so a
    syntax error escapes every extension (and so gets no code). Here a failed parse
    leaves the document unset; Strawberry then parses again and reports the error.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield
