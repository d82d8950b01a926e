"""Songs: the library, newest first, searchable by title or artist."""

import enum
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


def song_order(sort: SongSort = SongSort.DATE_ADDED, descending: bool = True) -> KeysetOrder:
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

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.search:
            pattern = f"%{escape_like(self.search)}%"
            clauses.append(
                sa.or_(
                    Song.title.ilike(pattern, escape="\\"),
                    Song.artist.ilike(pattern, escape="\\"),
                )
            )
        if self.source is not None:
            clauses.append(Song.source == self.source)
        return clauses


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
        return await self.page(request, order or song_order(), filter.clauses(), columns)

    async def count_matching(self, filter: SongFilter = SongFilter()) -> int:
        return await self.count(filter.clauses())

    async def get_by_youtube_id(self, youtube_id: str, columns: Columns = None) -> Any:
        """The song made from this video, or None; with `columns`, a plain row of those."""
        where = Song.youtube_id == youtube_id
        if columns is None:
            return (await self.session.scalars(sa.select(Song).where(where))).one_or_none()
        statement = sa.select(*column_list(Song, columns)).where(where)
        return (await self.session.execute(statement)).one_or_none()
