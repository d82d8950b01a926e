"""Reading the library: one song, or a page of songs."""

import strawberry

from graph.core.context import Info
from graph.core.errors import UserInputError
from graph.core.relay import Connection, from_global_id
from graph.songs.types import Song, SongOrder, SongSortField, SortDirection
from persistence.errors import ValidationError
from persistence.models import SongSource
from persistence.pagination import PageRequest
from persistence.repositories import SongFilter, SongSort, song_order

MAX_SEARCH_LENGTH = 200


@strawberry.type
class SongQuery:
    @strawberry.field(description="The song with this id, or null.")
    async def song(self, info: Info, id: strawberry.ID) -> Song | None:
        song_id = from_global_id(id, "Song")
        if song_id is None:
            return None
        row = await info.context.loaders.song_by_id.load(song_id)
        return None if row is None else Song.from_model(row)

    @strawberry.field(description="The song made from this YouTube video, or null.")
    async def song_by_youtube_id(self, info: Info, youtube_id: str) -> Song | None:
        async with info.context.read() as repos:
            row = await repos.songs.get_by_youtube_id(youtube_id.strip())
        if row is None:
            return None
        info.context.loaders.prime_song(row)
        return Song.from_model(row)

    @strawberry.field(
        description=(
            "The library, a page at a time (Relay cursor connection), newest first unless "
            "`orderBy` says otherwise. `search` matches title or artist, ignoring case; "
            "`first` and `last` default to 20 and may be at most 100."
        )
    )
    async def songs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        search: str | None = None,
        source: SongSource | None = None,
        order_by: SongOrder | None = None,
    ) -> Connection[Song]:
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise UserInputError(f"search must be at most {MAX_SEARCH_LENGTH} characters", "search")
        filter = SongFilter(search=(search or "").strip() or None, source=source)
        order = song_order(
            SongSort((order_by.field if order_by else SongSortField.DATE_ADDED).value),
            descending=(order_by.direction if order_by else SortDirection.DESC)
            == SortDirection.DESC,
        )
        request = PageRequest(first=first, after=after, last=last, before=before)
        try:
            async with info.context.read() as repos:
                page = await repos.songs.list(request, filter, order)
        except ValidationError as error:
            raise UserInputError(error.message, error.field) from None
        for row in page.rows:
            info.context.loaders.prime_song(row)

        async def count() -> int:
            async with info.context.read() as repos:
                return await repos.songs.count_matching(filter)

        return Connection[Song].from_page(page, Song.from_model, count)
