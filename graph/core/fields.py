"""Fields declared once: a GraphQL field or input field names the column it stands for.

`column(Song.title, description=...)` declares a field of an object type or an input type
read from (or written to) that column. Everything else derives from the declaration:
`from_columns` fills an object type from a row, `column_values` turns an input into the
columns it writes, and the compiled read path can choose exactly the columns a selection
needs. Nothing lists a type's columns a second time.
"""

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Set
from datetime import datetime
from enum import Enum
from typing import Any, Self, TypeVar

import strawberry
from sqlalchemy.orm import QueryableAttribute
from strawberry.schema.name_converter import NameConverter
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.base import has_object_definition
from strawberry.types.nodes import SelectedField, Selection

COLUMN = "songbook.column"
# A field's read declaration (graph/core/reads.py); one reading its parent row's column
# names it in `key`.
READS = "songbook.reads"


def column(attribute: QueryableAttribute[Any], *, description: str, **options: Any) -> Any:
    """A field backed by the column `attribute`; options go to strawberry.field."""
    return strawberry.field(description=description, metadata={COLUMN: attribute}, **options)


def column_fields(cls: type) -> Iterator[tuple[str, QueryableAttribute[Any]]]:
    """(Python field name, column) of each field of a Strawberry type backed by a column."""
    assert has_object_definition(cls), f"{cls.__name__} is not a Strawberry type"
    for field in cls.__strawberry_definition__.fields:
        attribute = field.metadata.get(COLUMN) if field.metadata else None
        if attribute is not None:
            yield field.python_name, attribute


class FromColumns:
    """A Strawberry type whose column fields are read from an ORM row in one place."""

    @classmethod
    def from_columns(cls, source: Any, /, *, only: Set[str] | None = None, **more: Any) -> Self:
        """`only`: the column keys the row `source` was loaded with (see
        `selected_columns`); the other column fields are left None, which no one reads
        since no one selected them."""
        values = {
            name: getattr(source, attribute.key) if only is None or attribute.key in only else None
            for name, attribute in column_fields(cls)
        }
        return cls(**values, **more)


def selected_columns(
    cls: type, selections: Iterable[Selection], names: NameConverter
) -> frozenset[str]:
    """The column keys `selections` (a selection set on `cls`) reads: of its column
    fields, and the keys its related fields are found by; through fragments whatever
    their type condition, and whether or not an @include or @skip would drop them: asking
    for too much costs bytes, too little would cost answers."""
    by_name = {
        names.from_field(field): key
        for field in cls.__strawberry_definition__.fields  # type: ignore[attr-defined]
        if (key := _column_read(field.metadata or {})) is not None
    }
    found: set[str] = set()
    for selection in selections:
        if isinstance(selection, SelectedField):
            if (key := by_name.get(selection.name)) is not None:
                found.add(key)
        else:  # an inline fragment or a fragment spread
            found |= selected_columns(cls, selection.selections, names)
    return frozenset(found)


def _column_read(metadata: Mapping[str, Any]) -> str | None:
    """The column of its own row a field reads: its column, or its related rows' key."""
    if COLUMN in metadata:
        return str(metadata[COLUMN].key)
    key = getattr(metadata.get(READS), "key", None)
    return None if key is None else str(key)


def sub_selections(selections: Iterable[Selection], *path: str) -> list[Selection]:
    """The selections under the fields named `path` (edges, node...), through fragments."""
    if not path:
        return list(selections)
    under: list[Selection] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == path[0]:
                under += sub_selections(selection.selections, *path[1:])
        else:
            under += sub_selections(selection.selections, *path)
    return under


def column_values(data: Any) -> dict[str, Any]:
    """The columns an input writes: {column name: value} for each field the client gave
    (fields left UNSET are left out)."""
    return {
        attribute.key: value
        for name, attribute in column_fields(type(data))
        if (value := getattr(data, name)) is not strawberry.UNSET
    }


E = TypeVar("E", bound=Enum)


def described_enum(enum_class: type[E], *, description: str, values: Mapping[E, str]) -> None:
    """Register a data-layer enum as a GraphQL enum, with a description for every value.

    The enum stays the data layer's own (persistence knows nothing of GraphQL), so its
    values' descriptions are given here, and every member must have one.
    """
    missing = [member.name for member in enum_class if member not in values]
    assert not missing, f"{enum_class.__name__} values without a description: {missing}"
    registered = strawberry.enum(enum_class, description=description)
    for value in registered.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[enum_class[value.name]]


# Strawberry's DateTime, described and pointing at its specification (@specifiedBy).
DATETIME = dataclasses.replace(
    DateTimeDefinition,
    description=(
        "A date and time with its UTC offset, as RFC 3339 writes it "
        "(for example 2026-11-30T20:24:45.123456+00:00)."
    ),
    specified_by_url="https://scalars.graphql.org/chillicream/date-time.html",
)
SCALAR_OVERRIDES: dict[object, Any] = {datetime: DATETIME}
