"""How each field reads its rows, declared once for both executors.

A field whose value is another type's rows, found through a loader:

    latest_job: Job | None = to_one(latest_job_by_song, key=models.Song.id, description=...)
    jobs: Connection[Job] = to_page(job_page_by_song, job_count_by_song, ...)

The declaration names the loader and the column of the parent's row that keys it; the
field's type comes from its annotation. Everything else derives from that: the Strawberry
resolver made here loads through the request's dataloaders, and the compiled read path
(graph/core/planner) reads the same declaration to fetch the rows for a whole level in
one batch, on its own connection.

A root field declares, in its metadata, the function that reads its rows: `Listing(fetch)`
for a connection, `Lookup(fetch)` for one object, `ById(node_type)` for a lookup by global
id. Its resolver hands its arguments to `listing` or `lookup` here; the planner calls the
same fetch with the arguments it read from the document. Column fields are declared with
`column` (graph/core/fields.py).
"""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from graphql import GraphQLNonNull, GraphQLObjectType, get_named_type
from sqlalchemy.orm import QueryableAttribute

from graph.core.context import Info, Repositories
from graph.core.errors import BadUserInput
from graph.core.fields import READS, column_fields, selected_columns, sub_selections
from graph.core.loaders import Loader
from graph.core.relay import After, Before, Connection, First, GlobalId, Last, Node, page_request
from persistence.errors import ValidationError
from persistence.pagination import Count, KeysetOrder, Page, PageRequest


@dataclass(frozen=True, slots=True)
class ToOne:
    """The object whose row `loader` finds by the parent row's column `key`; without a
    loader, the field's Node type's own (`by_id`)."""

    loader: Loader[Any, Any] | None
    key: str

    def loader_for(self, node_type: type[Node]) -> Loader[Any, Any]:
        return node_type.by_id if self.loader is None else self.loader


@dataclass(frozen=True, slots=True)
class ToPage:
    """A page of the rows `pages` finds by (the parent row's `key`, the page asked for), in
    `order`; `counts` counts them all."""

    pages: Loader[tuple[Any, PageRequest], Page[Any]]
    counts: Loader[Any, int]
    key: str
    order: KeysetOrder


def all_columns(node_type: type[Node]) -> frozenset[str]:
    """The columns of every column field of `node_type` (worked out once per type)."""
    return _all_columns(node_type.__name__)


@functools.cache
def _all_columns(type_name: str) -> frozenset[str]:
    return frozenset(attribute.key for _, attribute in column_fields(Node.types[type_name]))


def node_type_of(graphql_type: Any) -> type[Node]:
    """The Node type a field returns, itself or as a connection's items."""
    named = get_named_type(graphql_type)
    assert isinstance(named, GraphQLObjectType)
    if named.name not in Node.types:  # a connection: its edges' nodes
        named = get_named_type(get_named_type(named.fields["edges"].type).fields["node"].type)
    return Node.types[named.name]


def to_one(
    loader: Loader[Any, Any] | None = None,
    *,
    key: QueryableAttribute[Any],
    description: str,
    **options: Any,
) -> Any:
    """A field holding the object `loader` finds by the parent row's column `key` (by
    default, the Node the field returns, by its id). When the field is non-null and the
    row is gone (deleted since the parent was read), the field fails rather than answer
    null."""
    declaration = ToOne(loader, key.key)

    async def resolve(root: Any, info: Info) -> Any:
        return_type = info._raw_info.return_type
        node_type = node_type_of(return_type)
        parent = getattr(root.row, declaration.key)
        row = await info.context.loaders.load(declaration.loader_for(node_type), parent)
        if row is None:
            if isinstance(return_type, GraphQLNonNull):
                raise LookupError(f"the {info.field_name} of this object no longer exists")
            return None
        return node_type.from_model(row)

    return strawberry.field(
        resolver=resolve, description=description, metadata={READS: declaration}, **options
    )


def to_page(
    pages: Loader[tuple[Any, PageRequest], Page[Any]],
    counts: Loader[Any, int],
    *,
    key: QueryableAttribute[Any],
    order: KeysetOrder,
    description: str,
    **options: Any,
) -> Any:
    """A connection of the rows `pages` finds by the parent row's column `key`, in `order`;
    `totalCount` asks `counts`, only when selected."""
    declaration = ToPage(pages, counts, key.key, order)

    async def resolve(
        root: Any,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Any:
        request = checked_page(first, after, last, before, order)
        parent = getattr(root.row, declaration.key)
        loaders = info.context.loaders
        page = await loaders.load(pages, (parent, request))
        convert = node_type_of(info._raw_info.return_type).from_model

        async def count() -> int:
            return await loaders.load(counts, parent)

        return Connection[Any].from_page(page, convert, count)

    return strawberry.field(
        resolver=resolve, description=description, metadata={READS: declaration}, **options
    )


def checked_page(
    first: int | None, after: str | None, last: int | None, before: str | None, order: KeysetOrder
) -> PageRequest:
    """The page asked for, its cursors checked against `order`: a bad one fails this
    field (BAD_USER_INPUT), not the batch it would have joined."""
    request = page_request(first, after, last, before)
    try:
        request.bounds(order)
    except ValidationError as error:
        raise BadUserInput.of(error) from None
    return request


@dataclass(frozen=True, slots=True)
class Listed:
    """What a root connection's fetch found: the page, and how to count the whole list."""

    page: Page[Any]
    count: Callable[[Repositories], Awaitable[int | Count]]


# fetch(repos, columns, **arguments): `columns` are the column keys the selection reads
# (None: whole rows); arguments are the field's, by their Python names.
ListFetch = Callable[..., Awaitable[Listed]]
LookupFetch = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Listing:
    """A root connection whose page `fetch` reads."""

    fetch: ListFetch


@dataclass(frozen=True, slots=True)
class Lookup:
    """A root field answering the one row `fetch` reads, or null."""

    fetch: LookupFetch


@dataclass(frozen=True, slots=True)
class ById:
    """A root field answering the Node whose global id is its `id` argument: of
    `node_type` only, or of any type when None (`node(id:)`)."""

    node_type: type[Node] | None = None


def reads(declaration: Listing | Lookup | ById) -> dict[str, Any]:
    """The metadata that declares how a root field reads its rows."""
    return {READS: declaration}


async def listing(info: Info, fetch: ListFetch, **arguments: Any) -> Connection[Any]:
    """A root connection's value: the page `fetch` reads, holding only the columns the
    selection of its nodes reads."""
    node_type = node_type_of(info._raw_info.return_type)
    nodes = sub_selections(info.selected_fields, info.field_name, "edges", "node")
    only = selected_columns(node_type, nodes, info.schema.config.name_converter)
    context = info.context
    async with context.read() as repos:
        listed = await fetch(repos, only, **arguments)
    if only >= all_columns(node_type):
        # Whole rows answer later lookups of the same objects; partial ones must not.
        for row in listed.page.rows:
            context.loaders.prime(node_type.by_id, row.id, row)

    async def count() -> int | Count:
        async with context.read() as repos:
            return await listed.count(repos)

    def convert(row: Any) -> Any:
        return node_type.from_model(row, only)

    return Connection[Any].from_page(listed.page, convert, count)


async def lookup(info: Info, fetch: LookupFetch, **arguments: Any) -> Any:
    """A root field's one object, read whole by `fetch`; later lookups of the same object
    in the request find it among the loaders' rows."""
    node_type = node_type_of(info._raw_info.return_type)
    async with info.context.read() as repos:
        row = await fetch(repos, None, **arguments)
    if row is None:
        return None
    info.context.loaders.prime(node_type.by_id, row.id, row)
    return node_type.from_model(row)


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object by its global id (Relay), or null.",
        metadata=reads(ById()),
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The object's global id.")],
    ) -> Node | None:
        decoded = GlobalId.decode(id)
        return await decoded.node_type.resolve_node(info, decoded.key)
