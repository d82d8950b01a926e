"""Songs: the library, newest first, searchable by title or artist."""

import enum
import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from persistence.models import Song, SongSource
from persistence.pagination import KeyColumn, KeysetOrder, Page, PageRequest
from persistence.repositories.base import Columns, Repository, column_list


class SongSort(enum.StrEnum):
    DATE_ADDED = "date_added"
    TITLE = "title"
    ARTIST = "artist"


_SORT_COLUMNS: dict[SongSort, tuple[KeyColumn, str]] = {
    SongSort.DATE_ADDED: (Song.date_added, "date_added"),
    SongSort.TITLE: (Song.title, "title"),
    # Songs without an artist sort as if the artist were empty, on every dialect.
    SongSort.ARTIST: (sa.func.coalesce(Song.artist, ""), "artist_sort_key"),
}


@functools.cache
def song_order(sort: SongSort = SongSort.DATE_ADDED, descending: bool = True) -> KeysetOrder:
    """The order of that name; one object per order, so statements can be cached by it."""
    column, attribute = _SORT_COLUMNS[sort]
    return KeysetOrder(
        name=f"songs:{sort.value}:{'desc' if descending else 'asc'}",
        columns=(column, Song.id),
        attributes=(attribute, "id"),
        descending=descending,
    )


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character itself match literally in LIKE."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class SongFilter:
    search: str | None = None
    source: SongSource | None = None

    def parameters(self) -> dict[str, Any]:
        """The values `_matching`'s parameters take for this filter."""
        values: dict[str, Any] = {}
        if self.search:
            values["pattern"] = f"%{escape_like(self.search)}%"
        if self.source is not None:
            values["source"] = self.source
        return values


def _matching(searching: bool, by_source: bool) -> list[sa.ColumnElement[bool]]:
    """SongFilter's conditions with their values left as parameters (`pattern`, `source`)."""
    clauses: list[sa.ColumnElement[bool]] = []
    if searching:
        pattern: sa.BindParameter[str] = sa.bindparam("pattern")
        clauses.append(
            sa.or_(Song.title.ilike(pattern, escape="\\"), Song.artist.ilike(pattern, escape="\\"))
        )
    if by_source:
        clauses.append(Song.source == sa.bindparam("source"))
    return clauses


@functools.lru_cache(maxsize=512)
def _song_page(
    columns: frozenset[str] | None,
    order: KeysetOrder,
    searching: bool,
    by_source: bool,
    backwards: bool,
    after: bool,
    before: bool,
) -> sa.Select[Any]:
    """The statement of a page of songs, built once per shape of request: what varies
    between requests of one shape is in its parameters (the filter's, the cursors'
    `after_N`/`before_N`, and `limit`)."""
    if columns is None:
        statement = sa.select(Song)
    else:
        sorting = order.labelled()
        named = {getattr(c, "key", None) for c in sorting}
        chosen = [c for c in column_list(Song, sorted(columns)) if c.key not in named]
        statement = sa.select(*chosen, *sorting)
    where = _matching(searching, by_source)
    if after:
        where.append(order.beyond_parameters("after"))
    if before:
        where.append(order.beyond_parameters("before", reverse=True))
    return (
        statement.where(*where)
        .order_by(*order.order_by(reverse=backwards))
        .limit(sa.bindparam("limit"))
    )


@functools.lru_cache(maxsize=8)
def _song_count(searching: bool, by_source: bool) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(Song).where(*_matching(searching, by_source))


class SongRepository(Repository[Song]):
    model = Song

    async def list(
        self,
        request: PageRequest,
        filter: SongFilter = SongFilter(),
        order: KeysetOrder | None = None,
        columns: Columns = None,
    ) -> Page[Any]:
        """A page of the library, newest first unless another order is given.

        `columns`: the only columns the caller will read; the page then holds plain rows
        of those (with the id and what orders them), never a lyrics nobody asked for.
        Whole songs when None."""
        request = request.validated()
        order = order or song_order()
        statement = _song_page(
            None if columns is None else frozenset(columns),
            order,
            bool(filter.search),
            filter.source is not None,
            request.backwards,
            request.after is not None,
            request.before is not None,
        )
        parameters = {
            **filter.parameters(),
            **request.bound_values(order),
            "limit": request.size + 1,
        }
        result = await self.session.execute(statement, parameters)
        rows = list(result.scalars().all() if columns is None else result.all())
        return request.page_of(rows, order)

    async def count_matching(self, filter: SongFilter = SongFilter()) -> int:
        statement = _song_count(bool(filter.search), filter.source is not None)
        return int((await self.session.execute(statement, filter.parameters())).scalar_one())

    async def get_by_youtube_id(self, youtube_id: str, columns: Columns = None) -> Any:
        """The song made from this video, or None; with `columns`, a plain row of those."""
        where = Song.youtube_id == youtube_id
        if columns is None:
            return (await self.session.scalars(sa.select(Song).where(where))).one_or_none()
        statement = sa.select(*column_list(Song, columns)).where(where)
        return (await self.session.execute(statement)).one_or_none()
