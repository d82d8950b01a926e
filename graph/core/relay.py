"""Relay's conventions: global object ids, the Node interface and cursor connections.

A global id is base64 of `TypeName:key`. ONE codec reads them, for every entry point
(queries, mutations, subscriptions): an id that is not base64, is empty, names a type
Songbook does not have, or holds a key that is not a UUID is the client's mistake and
always the same error, `BAD_USER_INPUT`. A well-formed id of another type's object is
simply not an object of the type asked for: null in queries, NotFoundError in mutations.
"""

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

import strawberry

from graph.core.context import Info
from graph.core.errors import BadUserInput
from graph.core.loaders import Loader
from persistence.errors import ValidationError
from persistence.ids import is_valid_id
from persistence.pagination import Count, Page, PageRequest

NodeType = TypeVar("NodeType")


class InvalidGlobalId(BadUserInput):
    def __init__(self, argument: str) -> None:
        super().__init__(f"{argument} is not a valid id", argument)


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    """Each implementing type registers under its GraphQL name as it is defined, names
    the loader that finds its rows by key (`by_id`, for `node(id:)` and the compiled read
    path), and builds itself from a row (`from_model`)."""

    id: strawberry.ID = strawberry.field(description="The object's globally unique id.")

    # GraphQL type name -> the type; filled as node types are defined.
    types: ClassVar[dict[str, type["Node"]]] = {}
    by_id: ClassVar[Loader[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Node.types[cls.__name__] = cls

    @classmethod
    def global_id(cls, key: str) -> strawberry.ID:
        return strawberry.ID(base64.b64encode(f"{cls.__name__}:{key}".encode()).decode())

    @classmethod
    def key_of(cls, global_id: str, argument: str = "id") -> str | None:
        """The key inside `global_id` when it names an object of this type, else None."""
        return GlobalId.decode(global_id, argument).key_for(cls)

    @classmethod
    def from_model(cls, row: Any, only: AbstractSet[str] | None = None) -> Self:
        """The object a row of this type's table stands for, keeping the row (`row`, which
        its related fields read their keys from); `only`: the columns the row holds, when
        not all (see graph.core.fields.FromColumns, which every Node type is)."""
        from_columns = getattr(cls, "from_columns")  # noqa: B009 (a mixin's classmethod)
        node: Self = from_columns(row, only=only, id=cls.global_id(row.id), row=row)
        return node

    @classmethod
    async def resolve_node(cls, info: Info, key: str) -> Self | None:
        """The object with this key, or None (node(id:) calls it)."""
        row = await info.context.loaders.load(cls.by_id, key)
        return None if row is None else cls.from_model(row)


@dataclass(frozen=True, slots=True)
class GlobalId:
    """A decoded global id: a type Songbook has, and a well-formed key."""

    type_name: str
    key: str

    @classmethod
    def decode(cls, global_id: str, argument: str = "id") -> "GlobalId":
        try:
            decoded = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            raise InvalidGlobalId(argument) from None
        type_name, _, key = decoded.partition(":")
        if type_name not in Node.types or not is_valid_id(key):
            raise InvalidGlobalId(argument)
        return cls(type_name, key)

    @property
    def node_type(self) -> type[Node]:
        return Node.types[self.type_name]

    def key_for(self, node_type: type[Node]) -> str | None:
        return self.key if self.type_name == node_type.__name__ else None


@strawberry.type(description="Where a page sits in its list (Relay cursor connections).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="More items precede this page.")
    start_cursor: str | None = strawberry.field(description="The first item's cursor.")
    end_cursor: str | None = strawberry.field(description="The last item's cursor.")


@strawberry.type(description="An item of a page and the cursor that points at it.")
class Edge(Generic[NodeType]):
    cursor: str = strawberry.field(description="Opaque; pass as `after` or `before`.")
    node: NodeType = strawberry.field(description="The item.")


@strawberry.type(description="One page of a list, with cursors to move through it.")
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the list.")
    counter: strawberry.Private[Callable[[], Awaitable[int | Count]]]
    counting: strawberry.Private["asyncio.Future[int | Count] | None"] = None

    async def count(self) -> Count:
        """The list's count, asked of the database once however many fields read it."""
        if self.counting is None:
            self.counting = asyncio.ensure_future(self.counter())
        return Count.of(await asyncio.shield(self.counting))

    @strawberry.field(
        description="How many items the whole list holds (counted only if asked); for a "
        "search, at most 10,000: see totalCountIsCapped."
    )
    async def total_count(self) -> int:
        return (await self.count()).value

    @strawberry.field(
        description="Whether totalCount stopped counting at its cap (10,000, a search's) "
        "and more items match: GitHub's search caps its counts the same way."
    )
    async def total_count_is_capped(self) -> bool:
        return (await self.count()).capped

    @classmethod
    def from_page(
        cls,
        page: Page[Any],
        convert: Callable[[Any], NodeType],
        counter: Callable[[], Awaitable[int | Count]],
    ) -> "Connection[NodeType]":
        nodes: Sequence[NodeType] = [convert(row) for row in page.rows]
        cursors = page.cursors
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            counter=counter,
        )


# The arguments of every connection field, described once.
First = Annotated[
    int | None,
    strawberry.argument(
        description="The first n items (after `after`); 20 by default, 100 at most."
    ),
]
After = Annotated[
    str | None, strawberry.argument(description="A cursor: items after the one it points at.")
]
Last = Annotated[
    int | None,
    strawberry.argument(description="The last n items (before `before`); at most 100."),
]
Before = Annotated[
    str | None, strawberry.argument(description="A cursor: items before the one it points at.")
]


def page_request(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageRequest:
    """The page a connection's arguments ask for; malformed ones are BAD_USER_INPUT."""
    try:
        return PageRequest(first=first, after=after, last=last, before=before).validated()
    except ValidationError as error:
        raise BadUserInput.of(error) from None
