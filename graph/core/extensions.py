"""Schema extensions: stable error codes, caches, and the limits every operation meets."""

import contextlib
import logging
from collections.abc import Callable, Iterator

import strawberry.extensions
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import (
    AddValidationRules,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from graph.core.documents import DocumentResolution, provided_operation_name
from graph.core.errors import camel_case
from persistence import errors as domain

logger = logging.getLogger("songbook.graph")

MAX_QUERY_DEPTH = 12
PARSER_CACHE_SIZE = 512
VALIDATION_CACHE_SIZE = 512
# QueryDepthLimiter builds its rule class anew each time it is made, and the validation
# cache is keyed by the rules: built once here, so a repeated document is validated once.
DEPTH_RULES = tuple(QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH).validation_rules)


def _coded(error: GraphQLError, message: str, code: str, **more: object) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        # Kept for the server's eyes (logging); clients see message and extensions only.
        original_error=error.original_error,
        extensions={**(error.extensions or {}), **more, "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Give every error a stable `extensions.code` and hide what clients must not see:
    messages never carry a stack trace, SQL or a file path."""

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
            self.log_outage(result.errors)

    @staticmethod
    def log_outage(errors: list[GraphQLError]) -> None:
        """One line per operation the database failed, however many of its fields failed:
        an outage must not bury the log in tracebacks. (Subscriptions ended because live
        updates lost the database are the job-event listener's to report, once.)"""
        for error in errors:
            if isinstance(error.original_error, domain.DatabaseUnavailable):
                logger.warning("Database unavailable: %s", error.original_error.reason)
                return

    def classify(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GraphQLError):
            # Ours carry a code; graphql-core's own (variable coercion) are bad input.
            code = (original.extensions or {}).get("code", "BAD_USER_INPUT")
            return _coded(error, error.message, str(code))
        if isinstance(original, domain.DatabaseUnavailable):
            return _coded(error, "The database is unavailable", "DATABASE_UNAVAILABLE")
        if isinstance(original, domain.DatabaseTimeout):
            return _coded(error, original.message, "TIMEOUT")
        if isinstance(original, domain.ValidationError):
            field = camel_case(original.field)
            return _coded(error, original.message, "BAD_USER_INPUT", field=field)
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


class OperationNameRequired(SchemaExtension):
    """A document of several operations must name the one to run (the spec's
    GetOperation); Strawberry alone would quietly run the first. Listed after
    ValidationCache, so its error joins the cached validation's."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        named = provided_operation_name(context) is not None
        if document is not None and not named:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                error = GraphQLError(
                    "The document holds several operations: name the one to run in operationName"
                )
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield


# The extensions every operation runs through, in order: classes or factories, so each
# operation gets instances of its own.
EXTENSIONS: list[Callable[[], SchemaExtension]] = [
    ErrorCodes,
    lambda: ParserCache(maxsize=PARSER_CACHE_SIZE),
    lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
    lambda: AddValidationRules(list(DEPTH_RULES)),
    OperationNameRequired,
    # Last: its refusal replaces what validation found, and it registers a persisted
    # query only after every other check passed.
    DocumentResolution,
]
