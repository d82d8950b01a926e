"""The size and shape limits every operation meets before it is validated or run.

Size: a document is parsed with a token limit (SONGBOOK_MAX_TOKENS), so a huge one is
refused while it is read, before its syntax tree is built. Refused: QUERY_TOO_LARGE.

Shape: the operation to run is measured in one pass, in time linear in the document,
and refused (QUERY_TOO_COMPLEX, with `measured` and `allowed`) when it breaks a limit:
- depth (SONGBOOK_MAX_DEPTH): the most fields nested one inside another, `{ songs {
  totalCount } }` being 2. Inside `__schema` and `__type` nesting is not counted: the
  introspection queries tools send nest `ofType` deeper than any data query, and
  answering them reads nothing but the schema.
- aliases (SONGBOOK_MAX_ALIASES): aliased fields, each counted as often as it would
  appear with every fragment spread expanded.
- nodes (SONGBOOK_MAX_NODES), after GitHub's node limit: every field counts the product
  of the page sizes of the connections enclosing it, itself included when it is one;
  summed over the operation. A connection's page size is its `first` or `last` (from the
  document or the variables), else the default page size; never less than 1, never more
  than the largest page it would serve (persistence/pagination.py).

Each fragment is walked once, however often it is spread: a spread adds what its fragment
holds, multiplied by the page sizes around the spread. So a document of 40 fragments each
spreading the one before twice is measured in 40 steps, not 2^40. Fragment cycles and
spreads of unknown fragments count nothing; validation, which runs only once these
limits pass, reports them.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.types.execution import ParseOptions

from graph.core.relay import Connection
from graph.core.settings import Settings
from persistence.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"

# Counts stop growing here: the largest integer a JSON number holds exactly in JavaScript.
# Far above every limit, so a count that reaches it is refused all the same.
CEILING = 2**53 - 1
_PAGE_ARGUMENTS = ("first", "last")
_INTROSPECTION_FIELDS = ("__schema", "__type")


def parse_options(settings: Settings) -> ParseOptions:
    """graphql-core's parse options for a request. `max_tokens` counts comments too (and
    stops a run of comments as it is read), where `max_lexical_tokens` would not."""
    return ParseOptions(max_tokens=settings.max_tokens)


def too_large(error: GraphQLError, max_tokens: int | None) -> GraphQLError | None:
    """The QUERY_TOO_LARGE refusal when `error` is the parser's token limit, else None.

    graphql-core 3.3 (pinned in pyproject.toml) marks that error by its message alone:
    "Document contains more than N tokens. Parsing aborted."
    """
    if max_tokens is None or f"more than {max_tokens} tokens" not in error.message:
        return None
    return GraphQLError(
        f"The document is too large: it holds more than {max_tokens} tokens, the limit",
        extensions={"code": QUERY_TOO_LARGE, "allowed": max_tokens},
    )


@dataclass(frozen=True, slots=True)
class Shape:
    """What an operation asks for, measured as the module docstring says."""

    depth: int = 0
    aliases: int = 0
    nodes: int = 0

    def refusals(self, settings: Settings) -> list[GraphQLError]:
        """A QUERY_TOO_COMPLEX error for each limit this shape breaks."""
        checks = [
            ("depth", self.depth, settings.max_depth, "fields nest {} deep"),
            ("aliases", self.aliases, settings.max_aliases, "it uses {} aliases"),
            (
                "nodes",
                self.nodes,
                settings.max_nodes,
                "it may return {} nodes (page sizes multiplied along each path)",
            ),
        ]
        return [
            GraphQLError(
                f"The query is too complex: {what.format(measured)}; the {limit} limit "
                f"is {allowed}",
                extensions={
                    "code": QUERY_TOO_COMPLEX,
                    "limit": limit,
                    "measured": measured,
                    "allowed": allowed,
                },
            )
            for limit, measured, allowed, what in checks
            if measured > allowed
        ]


def _add(a: int, b: int) -> int:
    return min(a + b, CEILING)


def _times(a: int, b: int) -> int:
    return min(a * b, CEILING)


@dataclass(slots=True)
class _Body:
    """One definition's own fields, and the fragments it spreads: (name, fields enclosing
    the spread or None inside introspection, page sizes multiplied around the spread)."""

    depth: int = 0
    aliases: int = 0
    nodes: int = 0
    spreads: list[tuple[str, int | None, int]] = field(default_factory=list)


class _Measure:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragments.setdefault(definition.name.value, definition)
        self.bodies: dict[str, _Body] = {}
        self.totals: dict[str, Shape] = {}

    def operation(self, operation: OperationDefinitionNode) -> Shape:
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[operation.operation]
        body = self.walk(operation.selection_set, root)
        for name, _, _ in body.spreads:
            self.total(name)
        return self.combine(body)

    def total(self, name: str) -> None:
        """Measure fragment `name` and every fragment it spreads, dependencies first,
        without recursion (a chain of spreads may be as long as the document)."""
        if name in self.bodies or name not in self.fragments:
            return
        stack = [(name, iter(self.body(name).spreads))]
        while stack:
            current, pending = stack[-1]
            spread = next(pending, None)
            if spread is None:
                stack.pop()
                self.totals[current] = self.combine(self.bodies[current])
            elif spread[0] not in self.bodies and spread[0] in self.fragments:
                # Not yet seen; one already seen but without a total is part of a cycle.
                stack.append((spread[0], iter(self.body(spread[0]).spreads)))

    def body(self, name: str) -> _Body:
        fragment = self.fragments[name]
        type_ = self.schema.get_type(fragment.type_condition.name.value)
        body = self.bodies[name] = self.walk(fragment.selection_set, type_)
        return body

    def combine(self, body: _Body) -> Shape:
        depth, aliases, nodes = body.depth, body.aliases, body.nodes
        for name, enclosing, pages in body.spreads:
            spread = self.totals.get(name)
            if spread is None:  # an unknown fragment, or a cycle
                continue
            if enclosing is not None:
                depth = max(depth, enclosing + spread.depth)
            aliases = _add(aliases, spread.aliases)
            nodes = _add(nodes, _times(pages, spread.nodes))
        return Shape(depth, aliases, nodes)

    def walk(self, selection_set: SelectionSetNode, type_: GraphQLNamedType | None) -> _Body:
        """One definition's selections, without following its spreads."""
        body = _Body()
        # (selections, their parent type, fields enclosing them, page sizes multiplied
        # around them, whether they are inside introspection)
        stack = [(selection_set, type_, 0, 1, False)]
        while stack:
            selections, parent, enclosing, pages, introspection = stack.pop()
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    field_type = self.field_type(parent, selection.name.value)
                    nodes = _times(pages, self.page_size(selection, field_type))
                    body.nodes = _add(body.nodes, nodes)
                    if selection.alias is not None:
                        body.aliases = _add(body.aliases, 1)
                    if not introspection:
                        body.depth = max(body.depth, enclosing + 1)
                    if selection.selection_set is not None:
                        inside = introspection or selection.name.value in _INTROSPECTION_FIELDS
                        stack.append(
                            (selection.selection_set, field_type, enclosing + 1, nodes, inside)
                        )
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inline = self.schema.get_type(condition.name.value) if condition else parent
                    stack.append((selection.selection_set, inline, enclosing, pages, introspection))
                elif isinstance(selection, FragmentSpreadNode):
                    depth = None if introspection else enclosing
                    body.spreads.append((selection.name.value, depth, pages))
        return body

    def field_type(self, parent: GraphQLNamedType | None, name: str) -> GraphQLNamedType | None:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return None
        definition = parent.fields.get(name)
        return get_named_type(definition.type) if definition is not None else None

    def page_size(self, node: FieldNode, type_: GraphQLNamedType | None) -> int:
        """1 for a field that is not a connection, else the page it asks for."""
        if not _is_connection(type_):
            return 1
        sizes = [
            value
            for argument in node.arguments or ()
            if argument.name.value in _PAGE_ARGUMENTS
            for value in [_whole(self.value(argument.value))]
            if value is not None
        ]
        size = max(sizes) if sizes else DEFAULT_PAGE_SIZE
        return min(max(size, 1), MAX_PAGE_SIZE)

    def value(self, node: ValueNode) -> object:
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        return None


def _whole(value: object) -> int | None:
    """A page size as Int coercion reads it: a JSON number with no fractional part (100.0
    is 100), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _is_connection(type_: GraphQLNamedType | None) -> bool:
    """Whether a type is one of relay.py's connections (Strawberry keeps the class a
    GraphQL type was made from in its extensions)."""
    if not isinstance(type_, GraphQLObjectType):
        return False
    origin = getattr(type_.extensions.get("strawberry-definition"), "origin", None)
    return isinstance(origin, type) and issubclass(origin, Connection)


def _variable_values(
    operations: Iterable[OperationDefinitionNode], variables: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The request's variables over the defaults the operations declare."""
    values: dict[str, Any] = {}
    for operation in operations:
        for definition in operation.variable_definitions or ():
            if definition.default_value is not None:
                name = definition.variable.name.value
                values.setdefault(name, value_from_ast_untyped(definition.default_value))
    if isinstance(variables, Mapping):
        values.update(variables)
    return values


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Shape:
    """The shape of the operation named `operation_name`; without a name, the largest
    measure of each of the document's operations (one of them runs, or none: a document
    of several operations needs a name)."""
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        and (
            operation_name is None or (definition.name and definition.name.value) == operation_name
        )
    ]
    measuring = _Measure(schema, document, _variable_values(operations, variables))
    shapes = [measuring.operation(operation) for operation in operations]
    return Shape(
        depth=max((s.depth for s in shapes), default=0),
        aliases=max((s.aliases for s in shapes), default=0),
        nodes=max((s.nodes for s in shapes), default=0),
    )
