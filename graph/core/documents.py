"""Which document an operation runs: one path for every transport.

A request names its document by text, by a hash (`extensions.persistedQuery`), or both.
The DocumentResolution extension turns that into the document to run inside the schema's
own lifecycle, so HTTP GET, HTTP POST, WebSocket subscribe (and any streaming transport
Strawberry adds) all meet the same rules: automatic persisted queries, trusted documents,
and registration of a new persisted query only once it has parsed and validated. The
server supplies the rules (a DocumentSource, graph/server/documents.py) through the
request's context.
"""

import contextvars
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

# The request's `extensions` where a transport does not hand them to the schema itself
# (Strawberry's WebSocket handlers; see graph/server/websocket.py).
REQUEST_EXTENSIONS: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "songbook_request_extensions", default=None
)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def provided_operation_name(context: ExecutionContext) -> str | None:
    """The operation name as the request gave it. ExecutionContext.operation_name falls back
    to the document's first operation (parsing it to find one), so this reads the private
    attribute behind it: Strawberry 0.341, pinned in pyproject.toml."""
    name = getattr(context, "_provided_operation_name", None)
    return name if isinstance(name, str) else None


def _placeholder(context: ExecutionContext) -> str:
    """What a refused request's operation parses as: an operation of a type the transport
    allows, named as the request asked, so it is found and validated (from the caches) but
    never runs, since the refusal takes the place of its validation errors."""
    kind = next(k for k in OperationType if k in context.allowed_operations)
    name = provided_operation_name(context)
    name = name if name is not None and _NAME.fullmatch(name) else ""
    return f"{kind.value} {name} {{ __typename }}"


# The one refusal a client recovers from by sending the query text (APQ's first round
# trip); Apollo Client and urql retry on exactly this code or the message "PersistedQueryNotFound".
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


class DocumentRefused(Exception):
    """The request names no document Songbook will run; `code` is the error's code, and
    `cause` the failure behind it, if any (a database that could not be asked)."""

    def __init__(self, message: str, code: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.cause = cause

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code}, original_error=self.cause)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The document to run, and the hash to register it under once it proves valid."""

    query: str | None
    register_as: str | None = None


class DocumentSource(Protocol):
    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> Resolved:
        """The document a request runs, or DocumentRefused."""

    async def register(self, resolved: Resolved) -> None:
        """Remember a document that parsed and validated under its hash."""


class DocumentResolution(SchemaExtension):
    """Resolve each operation's document before it is parsed; register it once valid."""

    def __init__(self) -> None:
        self.resolved: Resolved | None = None
        self.refused: DocumentRefused | None = None

    def _source(self) -> DocumentSource | None:
        return getattr(self.execution_context.context, "documents", None)

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context
        source = self._source()
        if source is not None:
            extensions = context.operation_extensions or REQUEST_EXTENSIONS.get()
            try:
                self.resolved = await source.resolve(context.query, extensions)
                context.query = self.resolved.query
            except DocumentRefused as refused:
                self.refused = refused
                context.query = _placeholder(context)
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        if self.refused is not None:
            # Validation that already has errors is not run again (Strawberry's
            # _run_validation), so the refusal is the operation's only error.
            context.pre_execution_errors = [self.refused.as_graphql_error()]
        yield
        source = self._source()
        if (
            source is not None
            and self.resolved is not None
            and self.resolved.register_as is not None
            and not context.pre_execution_errors
        ):
            await source.register(self.resolved)
