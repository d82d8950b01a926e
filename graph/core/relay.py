"""Relay conventions: global object ids, the Node interface and cursor connections."""

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError

from persistence.ids import is_valid_id
from persistence.pagination import Page

NodeType = TypeVar("NodeType")


class InvalidGlobalId(GraphQLError):
    def __init__(self, argument: str) -> None:
        super().__init__(
            f"{argument} is not a valid id",
            extensions={"code": "BAD_USER_INPUT", "field": argument},
        )


def to_global_id(type_name: str, id: str) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{id}".encode()).decode())


def parse_global_id(global_id: str) -> tuple[str, str] | None:
    """(type name, database id) of a well-formed global id, or None."""
    try:
        decoded = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, _, id = decoded.partition(":")
    if not type_name or not is_valid_id(id):
        return None
    return type_name, id


def from_global_id(global_id: str, expected_type: str, argument: str = "id") -> str | None:
    """The database id inside `global_id`, or None when it names another type.

    A malformed id is the client's mistake and raises, so the client hears of it.
    """
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise InvalidGlobalId(argument)
    type_name, id = parsed
    return id if type_name == expected_type else None


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(description="The object's globally unique id.")


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
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list holds; counted only if asked.")
    async def total_count(self) -> int:
        return await self.counter()

    @classmethod
    def build(
        cls,
        nodes: Sequence[NodeType],
        cursors: Sequence[str],
        *,
        has_next_page: bool,
        has_previous_page: bool,
        counter: Callable[[], Awaitable[int]],
    ) -> "Connection[NodeType]":
        edges = [Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next_page,
                has_previous_page=has_previous_page,
                start_cursor=cursors[0] if cursors else None,
                end_cursor=cursors[-1] if cursors else None,
            ),
            counter=counter,
        )

    @classmethod
    def from_page(
        cls,
        page: Page[Any],
        convert: Callable[[Any], NodeType],
        counter: Callable[[], Awaitable[int]],
    ) -> "Connection[NodeType]":
        return cls.build(
            [convert(row) for row in page.rows],
            page.cursors,
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            counter=counter,
        )
