"""The compiled read path: a query operation planned once, then answered in a few statements.

Strawberry answers a query by visiting every field of every object through graphql-core,
one resolver call, one awaitable and one serialisation at a time, with each level's rows
loaded into ORM objects by dataloaders, each batch in a session of its own. For the reads
the single-page apps send all day, that is most of the time a request takes. The planner
is a second executor for the same schema and the same declarations (graph/core/reads.py,
graph/core/fields.py):

- A document is parsed, measured against the limits and validated once, with the very
  rules Strawberry's path applies (graph/core/extensions.py), then compiled into a plan
  per value of the variables its @skip/@include read. Both are kept in a bounded LRU,
  keyed by the document's text and operation name (a persisted or trusted document,
  resolved from its hash, lands on the same entry and is never parsed again).
- A plan knows, per selection level, the columns that level reads (never lyrics unless
  asked for) and the one batched statement that fetches them for every row of the level:
  the same repository calls and loader batches the resolvers use, run on one connection
  in autocommit mode, returning plain rows (no ORM identity map).
- Rows are written straight into the response's dicts, in the order graphql-core's own
  field collection gives (graphql.execution.collect_fields, so aliases, fragments and
  directives merge exactly as Strawberry's path merges them), each value serialised by
  the same GraphQL type's serialize; the view encodes them with orjson.

Whatever the planner does not handle runs through Strawberry, unchanged: mutations,
subscriptions, introspection, any field without a read declaration or guarded by a
permission that looks at more than the caller's role. And so does any request that would
answer an error: a bad argument, cursor or id, variables that do not coerce, a refused
permission, a database failure, a non-null relation whose row has gone. The planner
gives up on those before writing anything (NotPlanned), and Strawberry answers the same
request from the start, with its errors, paths and nulls; reads change nothing, so
reading twice is harmless. SONGBOOK_COMPILED=off turns the planner off.
"""

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_named_type,
    parse,
    specified_rules,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor
from strawberry.permission import PermissionExtension
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from graph.core.context import Context, Repositories
from graph.core.errors import BadUserInput
from graph.core.extensions import (
    ErrorCodes,
    classify_failure,
    off_the_loop,
    validation_errors,
    validation_rules,
)
from graph.core.fields import COLUMN, READS
from graph.core.limits import measure, parse_options
from graph.core.permissions import RolePermission
from graph.core.reads import ById, Listing, Lookup, ToOne, ToPage, checked_page
from graph.core.relay import GlobalId, Node
from graph.core.settings import Settings
from graph.core.tracing import compiled_operation_span
from persistence.errors import DatabaseTimeout, DatabaseUnavailable, DomainError
from persistence.pagination import Count

logger = logging.getLogger("songbook.graph")

PLAN_CACHE_SIZE = 1024
# A document whose @skip/@include read more variables than this is planned for at most
# this many of their combinations (2 ** 4); past that, Strawberry runs it.
MAX_DIRECTIVE_VARIABLES = 4
# Measures kept per document, one per combination of its page-size variables.
MAX_SHAPES = 64

# What a field of a plan writes (the second item of each entry).
VALUE, ID, TYPENAME, RELATED, EDGES, PAGE_INFO, TOTAL, TOTAL_CAPPED, CURSOR, NODE = range(10)
# Scalars whose values are written as read: the database already holds them as such.
_AS_READ = (GraphQLString, GraphQLID, GraphQLInt, GraphQLBoolean, GraphQLFloat)
# PageInfo's fields, as the attributes of a Page that answer them.
_PAGE_INFO = {
    "hasNextPage": "has_next_page",
    "hasPreviousPage": "has_previous_page",
    "startCursor": "start_cursor",
    "endCursor": "end_cursor",
}


class Unplannable(Exception):
    """The operation (or this combination of its directives) is Strawberry's to run."""


class NotPlanned(Exception):
    """This request of a planned operation is Strawberry's to answer (an error lies ahead)."""


Entry = tuple[str, int, Any]  # (response key, what it writes, what it needs to)


@dataclass(slots=True)
class Arguments:
    """A field's arguments: converted once when the document fixes them, else per request."""

    definition: GraphQLField
    node: FieldNode
    strawberry_field: StrawberryField
    planner: "Planner"
    fixed: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not _reads_variables(self.node):
            self.fixed = self.convert(None)

    def convert(self, variables: VariableValues | None) -> dict[str, Any]:
        raw = get_argument_values(self.definition, self.node, variables)
        schema = self.planner.schema
        return convert_arguments(
            raw,
            self.strawberry_field.arguments,
            scalar_registry=schema.schema_converter.scalar_registry,
            config=schema.config,
        )

    def values(self, run: "Run") -> dict[str, Any]:
        return self.fixed if self.fixed is not None else self.convert(run.variables)


@dataclass(slots=True)
class ObjectPlan:
    """What to write for each row of one object type: its entries, the columns they read,
    and the related rows they need (fetched for all the level's rows at once)."""

    node_type: type[Node]
    entries: tuple[Entry, ...]
    columns: frozenset[str]
    related: tuple["OnePlan | PagePlan", ...]


@dataclass(slots=True)
class ConnectionPlan:
    """What to write for a page: its entries, and the node selections its edges hold."""

    entries: tuple[Entry, ...]
    nodes: tuple[ObjectPlan, ...]
    columns: frozenset[str]
    counted: bool


@dataclass(slots=True)
class OnePlan:
    declaration: ToOne
    loader: Any
    target: ObjectPlan
    required: bool


@dataclass(slots=True)
class PagePlan:
    declaration: ToPage
    arguments: Arguments
    connection: ConnectionPlan


@dataclass(slots=True)
class RootPlan:
    """A root field: how it reads its rows and what it writes of them."""

    key: str
    kind: str  # "typename", "listing", "lookup" or "by_id"
    required: bool = False
    declaration: Any = None
    arguments: Arguments | None = None
    connection: ConnectionPlan | None = None
    # By GraphQL type name: the object written for a row of that type (None: a type
    # the planner leaves to Strawberry).
    objects: dict[str, ObjectPlan | None] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    roots: tuple[RootPlan, ...]
    # Each set of roles a field of the plan is open to (RolePermission).
    roles: tuple[frozenset[Any], ...]


@dataclass(slots=True)
class Prepared:
    """A document that parsed, validated and named one query operation."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDetails]
    directive_variables: tuple[str, ...]
    # The operation's shape never changes with its variables: measured once, passed.
    shape_checked: bool
    document_hash: str
    plans: dict[tuple[Any, ...], Plan | None] = field(default_factory=dict)
    # Whether the limits refuse it, by the page sizes its variables give.
    shapes: dict[tuple[tuple[str, Any], ...], bool] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None


_NOT_PLANNED = object()


def _reads_variables(node: Any) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_: Any) -> None:
            nonlocal found
            found = True

    for argument in node.arguments or ():
        visit(argument, Finder())
    return found


def _directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables @skip and @include read anywhere in the document."""
    names: dict[str, None] = {}

    class Finder(Visitor):
        def enter_directive(self, node: Any, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments:
                    if isinstance(argument.value, VariableNode):
                        names[argument.value.name.value] = None

    visit(document, Finder())
    return tuple(names)


class Planner:
    """Plans and runs query operations for one schema under one set of settings."""

    def __init__(self, schema: Any, settings: Settings, cache_size: int = PLAN_CACHE_SIZE):
        self.schema = schema
        self.graphql = schema._schema
        self.settings = settings
        self.rules = validation_rules(tuple(specified_rules), settings.introspection_on)
        self.cache: LRUCache[tuple[str, str | None], Any] = LRUCache(maxsize=cache_size)
        self._fields: dict[str, dict[str, StrawberryField]] = {}
        # Requests answered here, and those handed to Strawberry.
        self.answered = 0
        self.handed_over = 0

    # --- preparing a document ------------------------------------------------------------

    def prepare(
        self, query: str, operation_name: str | None, variables: dict[str, Any] | None
    ) -> Prepared | None:
        """The document's query operation, parsed and checked as Strawberry's path would
        (measured with this request's variables before it is validated), or None when
        that path would refuse it or it is not a query."""
        try:
            document = parse(query, **parse_options(self.settings))
        except GraphQLError:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            operation = operations[0] if len(operations) == 1 else None
        else:
            named = [o for o in operations if o.name and o.name.value == operation_name]
            operation = named[0] if named else None
        if operation is None or operation.operation != OperationType.QUERY:
            return None
        fragments: dict[str, FragmentDetails] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                if definition.variable_definitions:
                    return None  # experimental fragment arguments
                fragments[definition.name.value] = FragmentDetails(definition)
        if self._refused(document, operation_name, variables):
            raise NotPlanned  # refused for these variables; others may pass
        suggestions_hidden = not self.settings.suggestions_on
        if validation_errors(self.graphql, document, self.rules, suggestions_hidden):
            return None
        shape_checked = not operation.variable_definitions
        return Prepared(
            document,
            operation,
            fragments,
            _directive_variables(document),
            shape_checked,
            hashlib.sha256(query.encode()).hexdigest(),
        )

    def _refused_with(
        self, prepared: Prepared, name: str | None, variables: VariableValues
    ) -> bool:
        """Whether the limits refuse the operation with these (coerced) variables. Only
        page sizes (Int values) change its measure, so the answer is kept per their values."""
        values = variables.coerced
        sizes = tuple((k, v) for k, v in values.items() if isinstance(v, int | type(None)))
        refused = prepared.shapes.get(sizes)
        if refused is None:
            refused = self._refused(prepared.document, name, values)
            if len(prepared.shapes) < MAX_SHAPES:
                prepared.shapes[sizes] = refused
        return refused

    def _refused(
        self, document: DocumentNode, name: str | None, variables: Mapping[str, Any] | None
    ) -> bool:
        shape = measure(self.graphql, document, name, variables)
        return bool(shape.refusals(self.settings))

    # --- compiling a plan ------------------------------------------------------------------

    def compile(self, prepared: Prepared, variables: VariableValues) -> Plan:
        query_type = self.graphql.query_type
        collected = collect_fields(
            self.graphql, prepared.fragments, variables, query_type, prepared.operation
        )
        if collected.new_defer_usages:
            raise Unplannable("@defer")
        compiler = _Compiler(self, prepared, variables)
        roots = tuple(
            compiler.root(key, details) for key, details in collected.grouped_field_set.items()
        )
        return Plan(roots, tuple(compiler.roles))

    def strawberry_fields(self, type_name: str) -> dict[str, StrawberryField]:
        """A type's Strawberry fields by their GraphQL names."""
        found = self._fields.get(type_name)
        if found is None:
            definition = self.schema.get_type_by_name(type_name)
            assert isinstance(definition, StrawberryObjectDefinition)
            names = self.schema.config.name_converter
            found = {names.get_graphql_name(f): f for f in definition.fields}
            self._fields[type_name] = found
        return found

    # --- answering a request -----------------------------------------------------------

    async def execute(
        self,
        context: Context,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> ExecutionResult | None:
        """The result of this request, or None when Strawberry should answer it."""
        try:
            result = await self._execute(context, query, operation_name, variables)
        except NotPlanned:
            result = None
        except Exception as error:
            # A flaw of the planner's must not cost the request: Strawberry answers it.
            # Named, without a traceback (which would carry the request's values).
            logger.error(
                "The compiled read path failed (%s); Strawberry answers instead",
                type(error).__name__,
            )
            result = None
        if result is None:
            self.handed_over += 1
        else:
            self.answered += 1
        return result

    async def _execute(
        self,
        context: Context,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> ExecutionResult | None:
        key = (query, operation_name)
        prepared = self.cache.get(key, None)
        if prepared is None:
            # A long document is parsed and validated off the event loop, as on Strawberry's
            # path (graph/core/extensions.py).
            prepared = await off_the_loop(query, self.prepare, query, operation_name, variables)
            prepared = prepared or _NOT_PLANNED
            self.cache[key] = prepared
        if prepared is _NOT_PLANNED:
            return None
        coerced = get_variable_values(
            self.graphql,
            prepared.operation.variable_definitions or (),
            variables or {},
            hide_suggestions=not self.settings.suggestions_on,
        )
        if isinstance(coerced, list):
            return None  # Strawberry reports the coercion errors
        if not prepared.shape_checked and self._refused_with(prepared, operation_name, coerced):
            return None
        plan = self._plan(prepared, coerced)
        if plan is None:
            return None
        role = context.identity.role
        if any(role not in roles for roles in plan.roles):
            return None
        if context.record is not None:
            context.record.document_hash = prepared.document_hash
            context.record.operation_type = "query"
            context.record.operation_name = prepared.name
        run = Run(context, coerced)
        try:
            with compiled_operation_span(prepared.name):
                data = await run.operation(plan)
        except NotPlanned:
            return None
        except (DatabaseUnavailable, DatabaseTimeout) as error:
            # Asking again through Strawberry would wait for the database a second time;
            # where Strawberry's answer is certain (one root failed before anything was
            # read), it is given here.
            if run.started or sum(root.kind != "typename" for root in plan.roots) != 1:
                return None
            return _failed(plan, error)
        except DomainError:
            return None  # Strawberry's path meets the same failure and reports it its way
        return ExecutionResult(data=data, errors=None)

    def _plan(self, prepared: Prepared, variables: VariableValues) -> Plan | None:
        names = prepared.directive_variables
        if len(names) > MAX_DIRECTIVE_VARIABLES:
            return None
        # The values themselves: null is not false (it fails @skip's `if: Boolean!`).
        choice = tuple(variables.coerced.get(name) for name in names)
        if choice not in prepared.plans:
            try:
                prepared.plans[choice] = self.compile(prepared, variables)
            except (Unplannable, GraphQLError):
                prepared.plans[choice] = None
        return prepared.plans[choice]


class _Compiler:
    """Turns one operation's collected fields into plans, collecting the roles they need."""

    def __init__(self, planner: Planner, prepared: Prepared, variables: VariableValues):
        self.planner = planner
        self.prepared = prepared
        self.variables = variables
        self.roles: list[frozenset[Any]] = []

    def subfields(
        self, object_type: GraphQLObjectType, details: Sequence[FieldDetails]
    ) -> dict[str, list[FieldDetails]]:
        collected = collect_subfields(
            self.planner.graphql,
            self.prepared.fragments,
            self.variables,
            self.prepared.operation,
            object_type,
            list(details),
        )
        if collected.new_defer_usages:
            raise Unplannable("@defer")
        return collected.grouped_field_set

    def field(self, type_name: str, name: str) -> StrawberryField:
        found = self.planner.strawberry_fields(type_name).get(name)
        if found is None:
            raise Unplannable(f"{type_name}.{name}")
        # Strawberry turns permission_classes into a PermissionExtension (read below).
        if any(not isinstance(e, PermissionExtension) for e in found.extensions):
            raise Unplannable(f"{type_name}.{name} has field extensions")
        for permission in found.permission_classes:
            if not issubclass(permission, RolePermission):
                raise Unplannable(f"{type_name}.{name} is guarded beyond roles")
            self.roles.append(permission.roles)
        return found

    def arguments(
        self, parent: GraphQLObjectType, name: str, details: Sequence[FieldDetails]
    ) -> Arguments:
        return Arguments(
            parent.fields[name], details[0].node, self.field(parent.name, name), self.planner
        )

    def root(self, key: str, details: list[FieldDetails]) -> RootPlan:
        query_type = self.planner.graphql.query_type
        name = details[0].node.name.value
        if name == "__typename":
            return RootPlan(key, "typename", declaration=query_type.name)
        strawberry_field = self.field(query_type.name, name)
        metadata: Mapping[str, Any] = strawberry_field.metadata or {}
        declaration = metadata.get(READS)
        definition = query_type.fields[name]
        arguments = self.arguments(query_type, name, details)
        required = isinstance(definition.type, GraphQLNonNull)
        plan = RootPlan(key, "", required, declaration, arguments)
        if isinstance(declaration, Listing):
            plan.kind = "listing"
            plan.connection = self.connection(definition.type, details)
        elif isinstance(declaration, Lookup | ById):
            plan.kind = "lookup" if isinstance(declaration, Lookup) else "by_id"
            named = get_named_type(definition.type)
            possible: Sequence[GraphQLObjectType] = (
                self.planner.graphql.get_possible_types(named)
                if isinstance(named, GraphQLInterfaceType)
                else [named]
            )
            for object_type in possible:
                try:
                    plan.objects[object_type.name] = self.object(object_type, details)
                except Unplannable:
                    plan.objects[object_type.name] = None
        else:
            raise Unplannable(f"Query.{name} declares no reads")
        return plan

    def object(self, object_type: GraphQLObjectType, details: Sequence[FieldDetails]) -> ObjectPlan:
        node_type = Node.types.get(object_type.name)
        if node_type is None:
            raise Unplannable(object_type.name)
        entries: list[Entry] = []
        columns: set[str] = {"id"}
        related: list[OnePlan | PagePlan] = []
        for key, field_details in self.subfields(object_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                entries.append((key, TYPENAME, object_type.name))
                continue
            strawberry_field = self.field(object_type.name, name)
            metadata: Mapping[str, Any] = strawberry_field.metadata or {}
            definition = object_type.fields[name]
            if COLUMN in metadata:
                column = metadata[COLUMN].key
                columns.add(column)
                entries.append((key, VALUE, (column, _serializer(definition))))
            elif name == "id":
                entries.append((key, ID, node_type))
            elif isinstance(declaration := metadata.get(READS), ToOne):
                target_type = get_named_type(definition.type)
                assert isinstance(target_type, GraphQLObjectType)
                target = self.object(target_type, field_details)
                loader = declaration.loader_for(target.node_type)
                required = isinstance(definition.type, GraphQLNonNull)
                columns.add(declaration.key)
                entries.append((key, RELATED, len(related)))
                related.append(OnePlan(declaration, loader, target, required))
            elif isinstance(declaration, ToPage):
                arguments = self.arguments(object_type, name, field_details)
                connection = self.connection(definition.type, field_details)
                columns.add(declaration.key)
                entries.append((key, RELATED, len(related)))
                related.append(PagePlan(declaration, arguments, connection))
            else:
                raise Unplannable(f"{object_type.name}.{name} declares no reads")
        return ObjectPlan(node_type, tuple(entries), frozenset(columns), tuple(related))

    def connection(self, graphql_type: Any, details: Sequence[FieldDetails]) -> ConnectionPlan:
        connection_type = get_named_type(graphql_type)
        assert isinstance(connection_type, GraphQLObjectType)
        entries: list[Entry] = []
        nodes: list[ObjectPlan] = []
        counted = False
        for key, field_details in self.subfields(connection_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                entries.append((key, TYPENAME, connection_type.name))
            elif name in ("totalCount", "totalCountIsCapped"):
                counted = True
                entries.append((key, TOTAL if name == "totalCount" else TOTAL_CAPPED, None))
            elif name == "pageInfo":
                entries.append((key, PAGE_INFO, self.page_info(connection_type, field_details)))
            elif name == "edges":
                edges = self.edges(connection_type, field_details, nodes)
                entries.append((key, EDGES, edges))
            else:
                raise Unplannable(f"{connection_type.name}.{name}")
        columns = frozenset().union(*(node.columns for node in nodes))
        return ConnectionPlan(tuple(entries), tuple(nodes), columns, counted)

    def page_info(
        self, connection_type: GraphQLObjectType, details: Sequence[FieldDetails]
    ) -> tuple[Entry, ...]:
        page_info_type, members = self.members(connection_type, "pageInfo", details)
        return tuple(
            (key, TYPENAME, page_info_type.name)
            if name == "__typename"
            else (key, VALUE, _PAGE_INFO[name])
            for key, name, _ in members
        )

    def members(
        self, parent: GraphQLObjectType, field_name: str, details: Sequence[FieldDetails]
    ) -> tuple[GraphQLObjectType, list[tuple[str, str, list[FieldDetails]]]]:
        """The object type of `parent`'s field, and its collected fields: (response key,
        field name, their nodes)."""
        member = get_named_type(parent.fields[field_name].type)
        assert isinstance(member, GraphQLObjectType)
        collected = self.subfields(member, details)
        return member, [(key, ds[0].node.name.value, ds) for key, ds in collected.items()]

    def edges(
        self,
        connection_type: GraphQLObjectType,
        details: Sequence[FieldDetails],
        nodes: list[ObjectPlan],
    ) -> tuple[Entry, ...]:
        edge_type, members = self.members(connection_type, "edges", details)
        entries: list[Entry] = []
        for key, name, field_details in members:
            if name == "__typename":
                entries.append((key, TYPENAME, edge_type.name))
            elif name == "cursor":
                entries.append((key, CURSOR, None))
            else:  # node
                node_type = get_named_type(edge_type.fields["node"].type)
                assert isinstance(node_type, GraphQLObjectType)
                entries.append((key, NODE, len(nodes)))
                nodes.append(self.object(node_type, field_details))
        return tuple(entries)


def _failed(plan: Plan, error: Exception) -> ExecutionResult:
    """What Strawberry's path answers when the database fails the one root field that
    reads it, before anything was read: the field's error at its path, and null for it
    (for the whole data when the field is non-null)."""
    data: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    required = False
    for root in plan.roots:
        if root.kind == "typename":
            data[root.key] = root.declaration
            continue
        assert root.arguments is not None
        failure = GraphQLError(
            str(error), nodes=[root.arguments.node], path=[root.key], original_error=error
        )
        errors.append(classify_failure(failure))
        data[root.key] = None
        required = required or root.required
    ErrorCodes.log_outage(errors)
    return ExecutionResult(data=None if required else data, errors=errors)


def _serializer(definition: GraphQLField) -> Callable[[Any], Any] | None:
    named = get_named_type(definition.type)
    return None if named in _AS_READ else getattr(named, "serialize")  # noqa: B009


class Run:
    """One request of a plan: its statements on one connection, its rows written out."""

    def __init__(self, context: Context, variables: VariableValues) -> None:
        self.context = context
        self.variables = variables
        self.repos: Repositories | None = None
        # Whether a statement has answered: a failure past that point fails fields
        # below the roots, which Strawberry reports field by field.
        self.started = False

    async def operation(self, plan: Plan) -> dict[str, Any]:
        if all(root.kind == "typename" for root in plan.roots):
            return {root.key: root.declaration for root in plan.roots}
        await self.context.read_from_replica()
        async with self.context.reads.connection() as connection:
            self.repos = Repositories(connection)  # type: ignore[arg-type]
            data: dict[str, Any] = {}
            for root in plan.roots:
                data[root.key] = await self.root(root)
            return data

    @property
    def reader(self) -> Any:
        assert self.repos is not None
        return self.repos.session

    async def root(self, plan: RootPlan) -> Any:
        if plan.kind == "typename":
            return plan.declaration
        assert plan.arguments is not None
        arguments = plan.arguments.values(self)
        try:
            if plan.kind == "listing":
                assert plan.connection is not None
                return await self.listing(plan.declaration, plan.connection, arguments)
            if plan.kind == "lookup":
                (object_plan,) = plan.objects.values()
                if object_plan is None:
                    raise NotPlanned
                row = await plan.declaration.fetch(self.repos, object_plan.columns, **arguments)
                self.started = True
                return None if row is None else (await self.objects(object_plan, [row]))[0]
            return await self.by_id(plan, arguments["id"])
        except BadUserInput:
            raise NotPlanned from None

    async def by_id(self, plan: RootPlan, global_id: str) -> Any:
        decoded = GlobalId.decode(global_id)
        wanted = plan.declaration.node_type
        if wanted is not None and decoded.type_name != wanted.__name__:
            return None
        object_plan = plan.objects.get(decoded.type_name)
        if object_plan is None:
            raise NotPlanned
        loader = object_plan.node_type.by_id
        (row,) = await loader.batch(self.reader, [decoded.key], object_plan.columns)
        self.started = True
        return None if row is None else (await self.objects(object_plan, [row]))[0]

    async def listing(
        self, declaration: Listing, plan: ConnectionPlan, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        assert self.repos is not None
        listed = await declaration.fetch(self.repos, plan.columns, **arguments)
        self.started = True
        count = Count.of(await listed.count(self.repos)) if plan.counted else None
        nodes = [await self.objects(node, listed.page.rows) for node in plan.nodes]
        return self.connection(plan, listed.page, nodes, count)

    async def objects(self, plan: ObjectPlan, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """The objects `plan` writes for `rows`, their related rows read for all at once."""
        related = [
            await (self.one(r, rows) if isinstance(r, OnePlan) else self.pages(r, rows))
            for r in plan.related
        ]
        if not rows:
            return []
        # Every row comes from one statement: its values are read by position.
        position = {name: i for i, name in enumerate(rows[0]._fields)}
        steps: list[tuple[str, int, Any, Any]] = [
            (key, kind, position[detail[0]], detail[1])
            if kind == VALUE
            else (key, kind, detail, position["id"])
            for key, kind, detail in plan.entries
        ]
        written = []
        for index, row in enumerate(rows):
            item: dict[str, Any] = {}
            for key, kind, first, second in steps:
                if kind == VALUE:
                    value = row[first]
                    item[key] = value if value is None or second is None else second(value)
                elif kind == ID:
                    item[key] = first.global_id(row[second])
                elif kind == TYPENAME:
                    item[key] = first
                else:
                    item[key] = related[first][index]
            written.append(item)
        return written

    async def one(self, plan: OnePlan, rows: Sequence[Any]) -> list[Any]:
        keys = [getattr(row, plan.declaration.key) for row in rows]
        found = await plan.loader.batch(self.reader, keys, plan.target.columns)
        if plan.required and any(row is None for row in found):
            raise NotPlanned  # gone since its parent was read: Strawberry reports it
        present = [row for row in found if row is not None]
        written = iter(await self.objects(plan.target, present))
        return [None if row is None else next(written) for row in found]

    async def pages(self, plan: PagePlan, rows: Sequence[Any]) -> list[dict[str, Any]]:
        arguments = plan.arguments.values(self)
        declaration = plan.declaration
        try:
            request = checked_page(
                arguments["first"],
                arguments["after"],
                arguments["last"],
                arguments["before"],
                declaration.order,
            )
        except BadUserInput:
            raise NotPlanned from None
        parents = [getattr(row, declaration.key) for row in rows]
        connection = plan.connection
        found = await declaration.pages.batch(
            self.reader, [(parent, request) for parent in parents], connection.columns
        )
        counts: Sequence[Count | None] = [None] * len(parents)
        if connection.counted:
            counted = await declaration.counts.batch(self.reader, parents, None)
            counts = [Count.of(c) for c in counted]
        every_row = [row for page in found for row in page.rows]
        nodes = [await self.objects(node, every_row) for node in connection.nodes]
        written, start = [], 0
        for page, count in zip(found, counts, strict=True):
            end = start + len(page.rows)
            written.append(self.connection(connection, page, [n[start:end] for n in nodes], count))
            start = end
        return written

    def connection(
        self, plan: ConnectionPlan, page: Any, nodes: list[list[Any]], count: Count | None
    ) -> dict[str, Any]:
        written: dict[str, Any] = {}
        for key, kind, detail in plan.entries:
            if kind == EDGES:
                written[key] = [self.edge(detail, page, nodes, i) for i in range(len(page.rows))]
            elif kind == PAGE_INFO:
                written[key] = self.page_info(detail, page)
            elif kind == TOTAL:
                written[key] = None if count is None else count.value
            elif kind == TOTAL_CAPPED:
                written[key] = None if count is None else count.capped
            else:
                written[key] = detail
        return written

    @staticmethod
    def edge(entries: tuple[Entry, ...], page: Any, nodes: list[list[Any]], i: int) -> Any:
        edge: dict[str, Any] = {}
        for key, kind, detail in entries:
            if kind == CURSOR:
                edge[key] = page.cursor(i)
            elif kind == NODE:
                edge[key] = nodes[detail][i]
            else:
                edge[key] = detail
        return edge

    @staticmethod
    def page_info(entries: tuple[Entry, ...], page: Any) -> dict[str, Any]:
        return {
            key: detail if kind == TYPENAME else getattr(page, detail)
            for key, kind, detail in entries
        }
