"""Schema extensions: stable error codes, caches, and the limits every operation meets."""

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import strawberry.extensions
from graphql import (
    ASTValidationRule,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    validate,
)
from graphql.language import DocumentNode
from graphql.validation import OverlappingFieldsCanBeMergedRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from graph.core.documents import DocumentResolution, provided_operation_name
from graph.core.errors import camel_case
from graph.core.limits import measure, parse_options, too_large
from graph.core.settings import Settings
from graph.core.tracing import operation_spans
from persistence import errors as domain

logger = logging.getLogger("songbook.graph")
T = TypeVar("T")

PARSER_CACHE_SIZE = 512
VALIDATION_CACHE_SIZE = 512
# Work graphql-core's OverlappingFieldsCanBeMergedRule may do on one document, in its own
# units (about a field comparison each). Its default, 500,000, lets a document within the
# token and shape limits (one field repeated 3,500 times) hold the CPU for seconds; real
# operations spend a handful. Past the budget, validation stops: "Validation aborted."
FIELD_MERGING_BUDGET = 20_000


# Documents longer than this are parsed and validated in a worker thread: up to the token
# limit that takes tens of milliseconds, and on the event loop every other request would
# wait for it. In a thread the interpreter hands the loop its turn every few milliseconds.
OFF_LOOP_CHARACTERS = 2_000


async def off_the_loop(query: str | None, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`work(...)`, in a worker thread when the document `query` is long."""
    if query is not None and len(query) > OFF_LOOP_CHARACTERS:
        return await asyncio.to_thread(work, *args, **kwargs)
    return work(*args, **kwargs)


def _settings(context: ExecutionContext) -> Settings:
    settings = getattr(context.context, "settings", None)
    assert isinstance(settings, Settings), "the request's Context carries the settings"
    return settings


def _rebuilt(error: GraphQLError, message: str, extensions: dict[str, Any] | None) -> GraphQLError:
    """`error` with another message and extensions, where it was in the document."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        # Kept for the server's eyes (logging); clients see message and extensions only.
        original_error=error.original_error,
        extensions=extensions,
    )


# graphql-core repeats a variable's value when it does not coerce ("Variable '$i' has
# invalid value at .title: String cannot represent a non string value: 12345"). Values
# are the client's and may be secrets; the message keeps the variable, the place in it and
# the rule, and loses the value.
_VARIABLE_ERROR = re.compile(r"^(Variable '\$\w+' (?:got|has) invalid value[^:]*: )(.*)$", re.S)
_FOUND = re.compile(r",? [Ff]ound: .*$", re.S)
_ENUM_VALUE = re.compile(r"^Value .* (does not exist in '\w+' enum)", re.S)


def _without_value(rule: str) -> str:
    rule = _ENUM_VALUE.sub(r"The value \1", _FOUND.sub("", rule))
    # "... cannot represent non-integer value: 'x'": nothing after the last "value: ".
    head, separator, _ = rule.rpartition("value: ")
    rule = f"{head}value" if separator else rule
    return rule if rule.endswith((".", "?")) else f"{rule}."


def _without_variable_value(error: GraphQLError) -> GraphQLError:
    match = _VARIABLE_ERROR.match(error.message)
    if match is None:
        return error
    return _rebuilt(error, match.group(1) + _without_value(match.group(2)), error.extensions)


def _coded(error: GraphQLError, message: str, code: str, **more: object) -> GraphQLError:
    return _rebuilt(error, message, {**(error.extensions or {}), **more, "code": code})


def classify_failure(error: GraphQLError) -> GraphQLError:
    """A field's failure (an error with `original_error`) with its code and a message fit
    for clients; the compiled read path reports the database's failures through it too."""
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
    logger.error("Unexpected error in a resolver", exc_info=original)
    return _coded(error, "Internal server error", "INTERNAL_SERVER_ERROR")


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
        error = _without_variable_value(error)
        if error.original_error is not None:
            return classify_failure(error)
        if (error.extensions or {}).get("code"):
            return error
        if self.execution_context.graphql_document is None:
            max_tokens = self.execution_context.parse_options.get("max_tokens")
            return too_large(error, max_tokens) or _coded(
                error, error.message, "GRAPHQL_PARSE_FAILED"
            )
        if not self.executing:
            return _coded(error, error.message, "GRAPHQL_VALIDATION_FAILED")
        if error.path is None:
            return _coded(error, error.message, "BAD_USER_INPUT")
        return _coded(error, error.message, "INTERNAL_SERVER_ERROR")


class ParserCache(strawberry.extensions.ParserCache):
    """Strawberry's parser cache, with the token limit, letting syntax errors reach the
    result as errors.

    The stock extension parses before Strawberry's own error handling is in place, so a
    syntax error escapes every extension (and so gets no code). Here a failed parse
    leaves the document unset; Strawberry then parses again (with the same options, so a
    document over the token limit is again abandoned at the limit) and reports the error.
    """

    async def on_parse(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context
        context.parse_options = parse_options(_settings(context))
        with contextlib.suppress(GraphQLError):
            context.graphql_document = await off_the_loop(
                context.query, self.cached_parse_document, context.query, **context.parse_options
            )
        yield


class OperationLimits(SchemaExtension):
    """Refuse an operation over the depth, aliases or nodes limit (graph/core/limits.py)
    before it is validated: validating, let alone running, a document whose fragments
    multiply can take time exponential in its length. Measuring it takes linear time."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            shape = measure(
                context.schema._schema,
                document,
                provided_operation_name(context),
                context.variables,
            )
            refusals = shape.refusals(_settings(context))
            if refusals:
                # Strawberry validates only while no errors are set (its _run_validation).
                context.pre_execution_errors = refusals
        yield


class BoundedFieldMerging(OverlappingFieldsCanBeMergedRule):
    """graphql-core's OverlappingFieldsCanBeMergedRule within FIELD_MERGING_BUDGET. The
    budget is kept in the rule's RuleContext (graphql-core 3.3, pinned in pyproject.toml)."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.rule_context.remaining_complexity_budget = FIELD_MERGING_BUDGET


Rules = tuple[type[ASTValidationRule], ...]


@functools.lru_cache(maxsize=64)
def validation_rules(base: Rules, introspection: bool) -> Rules:
    """The rules a request's document must pass: graphql-core's (with field merging
    bounded), Strawberry's own two (as its validate_document adds them), and no
    `__schema` or `__type` unless introspection is on (`__typename` stays allowed)."""
    rules = tuple(
        BoundedFieldMerging if rule is OverlappingFieldsCanBeMergedRule else rule for rule in base
    )
    rules += (MaybeNullValidationRule, OneOfInputValidationRule)
    return rules if introspection else (*rules, NoSchemaIntrospectionCustomRule)


@functools.lru_cache(maxsize=VALIDATION_CACHE_SIZE)
def validation_errors(
    schema: GraphQLSchema, document: DocumentNode, rules: Rules, hide_suggestions: bool
) -> list[GraphQLError]:
    errors = validate(schema, document, rules, hide_suggestions=hide_suggestions)
    if hide_suggestions:
        # graphql-core's ScalarLeafsRule still hints "Did you mean 'songs { ... }'?".
        errors = [_without_suggestion(error) for error in errors]
    return errors


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    message, suggested, _ = error.message.partition(" Did you mean ")
    return _rebuilt(error, message, error.extensions) if suggested else error


class CachedValidation(SchemaExtension):
    """graphql-core's validation with the rules and suggestions the settings decide,
    cached like Strawberry's ValidationCache (which it replaces: that one keys on the
    document and rules alone, and always validates). The cache keys on the parsed
    document (one object per query text, from ParserCache), the rules and whether
    suggestions are hidden, so a repeated document is validated once. Nothing is
    validated once an extension before this one has refused the operation."""

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            settings = _settings(context)
            rules = validation_rules(tuple(context.validation_rules), settings.introspection_on)
            context.pre_execution_errors = await off_the_loop(
                context.query,
                validation_errors,
                context.schema._schema,
                document,
                rules,
                not settings.suggestions_on,
            )
        yield


class Executor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core executor, leaving "Did you mean ...?" out of variable
    errors (an enum value or input field misspelt) unless the settings allow suggestions.

    graphql-core takes `hide_suggestions` per call, and Strawberry 0.341 (pinned in
    pyproject.toml) never passes it; `build` is where each operation's executor is made,
    with the request's context at hand.
    """

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        # graphql-core passes (schema, document, root_value, context_value, ...) by position.
        context = args[3] if len(args) > 3 else kwargs.get("context_value")
        settings = getattr(context, "settings", None)
        if isinstance(settings, Settings):
            kwargs["hide_suggestions"] = not settings.suggestions_on
        return super().build(*args, **kwargs)


class OperationNameRequired(SchemaExtension):
    """A document of several operations must name the one to run (the spec's
    GetOperation); Strawberry alone would quietly run the first. Listed after
    CachedValidation, so its error joins the validation's."""

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


class Recorded(SchemaExtension):
    """Note the operation's name and type in the request's record (graph/core/metrics.py)
    once it is known: after parsing, whatever came of it."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        record = getattr(context.context, "record", None)
        if record is None or context.graphql_document is None:
            return
        if context.query:
            record.document_hash = hashlib.sha256(context.query.encode()).hexdigest()
        with contextlib.suppress(Exception):  # no operation of that name: nothing to note
            record.operation_type = context.operation_type.value
            record.operation_name = context.operation_name


class ReplicaReads(SchemaExtension):
    """A query over HTTP reads from a replica when one is usable (persistence/replicas.py):
    decided once the operation is known to be a query, before it executes."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        read_from_replica = getattr(context.context, "read_from_replica", None)
        if read_from_replica is not None and context.operation_type is OperationType.QUERY:
            await read_from_replica()
        yield


# The extensions every operation runs through, in order: classes or factories, so each
# operation gets instances of its own.
EXTENSIONS: list[Callable[[], SchemaExtension]] = [
    # First: its operation span holds every other step's.
    operation_spans,
    Recorded,
    ErrorCodes,
    lambda: ParserCache(maxsize=PARSER_CACHE_SIZE),
    # Before validation, which it spares a document it refuses.
    OperationLimits,
    CachedValidation,
    OperationNameRequired,
    # After the checks: its refusal replaces what validation found, and it registers a
    # persisted query only once every other check passed.
    DocumentResolution,
    ReplicaReads,
]
