"""Songs: the library, newest first, searchable by title or artist."""

import enum
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from persistence.models import Song, SongSource
from persistence.pagination import KeyColumn, KeysetOrder, Page, PageRequest, paginate
from persistence.repositories.base import Repository


class SongSort(enum.StrEnum):
    DATE_ADDED = "date_added"
    TITLE = "title"
    ARTIST = "artist"


# What a page of songs always loads, whatever the caller needs: what identifies and orders
# a song, and so makes the cursors.
_KEY_COLUMNS = ("id", "title", "artist", "date_added")

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
        columns: Collection[str] | None = None,
    ) -> Page[Song]:
        """A page of the library, newest first unless another order is given.

        `columns`: the only columns the caller will read (besides those identifying and
        ordering a song); the rows come back with the others unloaded, and must not be
        read there (lyrics can be long). All of them when None."""
        statement = sa.select(Song)
        if columns is not None:
            wanted = dict.fromkeys([*_KEY_COLUMNS, *columns])
            statement = statement.options(load_only(*(getattr(Song, key) for key in wanted)))
        return await paginate(
            self.session,
            statement.where(*filter.clauses()),
            order or song_order(),
            request,
        )

    async def count_matching(self, filter: SongFilter = SongFilter()) -> int:
        return await self.count(filter.clauses())

    async def get_by_youtube_id(self, youtube_id: str) -> Song | None:
        statement = sa.select(Song).where(Song.youtube_id == youtube_id)
        return (await self.session.scalars(statement)).one_or_none()
