"""Keyset pagination: pages that cost the same wherever they start.

A cursor names the sort key of the row it stands for; the next page is the rows whose key
comes after it. No OFFSET is ever used, so page 2,000 reads what page 1 reads.
"""

import base64
import binascii
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute

from persistence.errors import ValidationError

T = TypeVar("T")

KeyColumn = sa.ColumnElement[Any] | QueryableAttribute[Any]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class KeysetOrder:
    """A total order over rows: sort columns ending in the primary key, one direction."""

    name: str
    columns: tuple[KeyColumn, ...]
    attributes: tuple[str, ...]
    descending: bool

    def order_by(self, *, reverse: bool = False) -> list[sa.UnaryExpression[Any]]:
        descending = self.descending != reverse
        return [column.desc() if descending else column.asc() for column in self.columns]

    def beyond(self, values: Sequence[Any], *, reverse: bool = False) -> sa.ColumnElement[bool]:
        """Rows strictly past `values` in this order (before them when `reverse`).

        A row-value comparison, `(a, b) > (x, y)`: every column sorts the same way, and
        both SQLite and PostgreSQL turn it into one range seek on the composite index
        (SQLite scans the index instead for the equivalent `a > x OR (a = x AND b > y)`).
        """
        descending = self.descending != reverse
        key = sa.tuple_(*self.columns)
        bound = sa.tuple_(
            *(sa.literal(v, type_=c.type) for c, v in zip(self.columns, values, strict=True))
        )
        return key < bound if descending else key > bound

    def beyond_parameters(self, name: str, *, reverse: bool = False) -> sa.ColumnElement[bool]:
        """`beyond`, with the values left as parameters `name_0`, `name_1`...: a statement
        built once for many requests (see `PageRequest.bound_values`)."""
        return self._compared(name, reverse, strict=True)

    def within_parameters(self, name: str, *, reverse: bool = False) -> sa.ColumnElement[bool]:
        """The rows up to parameters `name_0`, `name_1`... in this order, those included:
        the complement of `beyond_parameters`, as one range of the same index."""
        return self._compared(name, not reverse, strict=False)

    def _compared(self, name: str, reverse: bool, *, strict: bool) -> sa.ColumnElement[bool]:
        descending = self.descending != reverse
        bounds = [sa.bindparam(f"{name}_{i}", type_=c.type) for i, c in enumerate(self.columns)]
        key, bound = sa.tuple_(*self.columns), sa.tuple_(*bounds)
        if strict:
            compared = key < bound if descending else key > bound
        else:
            compared = key <= bound if descending else key >= bound
        # The first column's own bound, which the row value implies: SQLite takes a row
        # value's range from an index of columns, not of expressions (the artist order's
        # coalesce()), and would read the whole index without it.
        first, first_bound = self.columns[0], bounds[0]
        leading = first <= first_bound if descending else first >= first_bound
        return sa.and_(leading, compared)

    def labelled(self) -> list[KeyColumn]:
        """The sort columns, each named as the row attribute cursors read it from, for a
        select of plain rows."""
        return [
            column if getattr(column, "key", None) == attribute else column.label(attribute)
            for column, attribute in zip(self.columns, self.attributes, strict=True)
        ]

    def key_of(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, attribute) for attribute in self.attributes)

    def cursor_of(self, row: Any) -> str:
        return encode_cursor(self.name, self.key_of(row))


@dataclass(frozen=True, slots=True)
class Count:
    """How many rows a list holds, or that it holds at least `value` when `capped` (a
    count that stopped rather than read on)."""

    value: int
    capped: bool = False

    @classmethod
    def of(cls, counted: "int | Count") -> "Count":
        return counted if isinstance(counted, Count) else cls(counted)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a client asked for: `first` rows after a cursor, or `last` rows before one."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self) -> "PageRequest":
        if self.first is not None and self.last is not None:
            raise ValidationError("first", "Pass either first or last, not both")
        for name, size in (("first", self.first), ("last", self.last)):
            if size is not None and size < 0:
                raise ValidationError(name, f"{name} must not be negative")
            if size is not None and size > MAX_PAGE_SIZE:
                raise ValidationError(name, f"{name} must be at most {MAX_PAGE_SIZE}")
        if self.first is None and self.last is None:
            return PageRequest(DEFAULT_PAGE_SIZE, self.after, None, self.before)
        return self

    @property
    def backwards(self) -> bool:
        """Whether the page is read from its end (`last`), in the reverse order."""
        return self.last is not None

    @property
    def size(self) -> int:
        """How many rows the page holds at most (of a validated request)."""
        size = self.last if self.backwards else self.first
        assert size is not None, "validate the request first"
        return size

    def bounds(self, order: KeysetOrder) -> list[sa.ColumnElement[bool]]:
        """The conditions `after` and `before` put on the rows, checked against `order`."""
        bounds = []
        if self.after is not None:
            bounds.append(order.beyond(decode_cursor("after", self.after, order)))
        if self.before is not None:
            before = decode_cursor("before", self.before, order)
            bounds.append(order.beyond(before, reverse=True))
        return bounds

    def bound_values(self, order: KeysetOrder) -> dict[str, Any]:
        """The parameters of `order.beyond_parameters("after")` and (reversed) "before"
        that this request's cursors fill; checked as `bounds` checks them."""
        values: dict[str, Any] = {}
        for name, cursor in (("after", self.after), ("before", self.before)):
            if cursor is not None:
                key = decode_cursor(name, cursor, order)
                values.update({f"{name}_{i}": value for i, value in enumerate(key)})
        return values

    def page_of(self, rows: list[T], order: KeysetOrder) -> "Page[T]":
        """The page made of `rows`: up to `size + 1` rows within the bounds, read in this
        request's direction (the extra row says whether more lie beyond)."""
        has_more = len(rows) > self.size
        rows = rows[: self.size]
        if self.backwards:
            rows.reverse()
            has_next, has_previous = self.before is not None, has_more
        else:
            has_next, has_previous = has_more, self.after is not None
        return Page(rows=rows, order=order, has_next_page=has_next, has_previous_page=has_previous)


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows of a keyset page; their cursors are made only when someone reads them."""

    rows: list[T]
    order: KeysetOrder
    has_next_page: bool
    has_previous_page: bool

    def cursor(self, index: int) -> str:
        return self.order.cursor_of(self.rows[index])

    @property
    def start_cursor(self) -> str | None:
        return self.cursor(0) if self.rows else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(len(self.rows) - 1) if self.rows else None

    @functools.cached_property
    def cursors(self) -> list[str]:
        return [self.order.cursor_of(row) for row in self.rows]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    return value


def encode_cursor(order_name: str, key: Sequence[Any]) -> str:
    payload = orjson.dumps([order_name, [_encode_value(v) for v in key]])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(field: str, cursor: str, order: KeysetOrder) -> tuple[Any, ...]:
    """The sort key inside a cursor, which must come from a page in the same order."""
    invalid = ValidationError(field, f"{field} is not a valid cursor for this list")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        order_name, values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        key = tuple(_decode_value(v) for v in values)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeEncodeError):
        raise invalid from None
    if order_name != order.name or len(key) != len(order.columns):
        raise invalid
    if not all(_fits(column, value) for column, value in zip(order.columns, key, strict=True)):
        raise invalid
    return key


def _fits(column: KeyColumn, value: Any) -> bool:
    """Whether a cursor's value can stand for `column` (a forged cursor may hold anything)."""
    expected = column.type.python_type
    if expected is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, expected) and not isinstance(value, bool)


async def paginate(
    session: Any,
    statement: sa.Select[Any],
    order: KeysetOrder,
    request: PageRequest,
    *,
    plain: bool = False,
) -> Page[Any]:
    """Run `statement` for one page of `request` in `order`, fetching one extra row to learn
    whether more rows lie beyond the page. The page holds the statement's first entity, or
    with `plain`, its rows as they are."""
    request = request.validated()
    statement = statement.where(*request.bounds(order))
    statement = statement.order_by(*order.order_by(reverse=request.backwards))
    result = await session.execute(statement.limit(request.size + 1))
    rows = list(result.all() if plain else result.scalars().all())
    return request.page_of(rows, order)
