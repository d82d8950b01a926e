"""Reading the library: one song, or a page of songs."""

from typing import Annotated

import strawberry

from graph.core.context import Info
from graph.core.errors import BadUserInput
from graph.core.fields import column_fields, selected_columns, sub_selections
from graph.core.relay import After, Before, Connection, First, Last, page_request
from graph.songs.loaders import prime_song
from graph.songs.types import Song, SongOrder, SongSortField, SortDirection
from persistence.errors import ValidationError
from persistence.models import SongSource
from persistence.repositories import SongFilter, SongRepository, SongSort, song_order

MAX_SEARCH_LENGTH = 200
ALL_SONG_COLUMNS = frozenset(attribute.key for _, attribute in column_fields(Song))


@strawberry.type
class SongQuery:
    @strawberry.field(description="The song with this id, or null.")
    async def song(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The song's global id.")],
    ) -> Song | None:
        key = Song.key_of(id)
        return None if key is None else await Song.resolve_node(info, key)

    @strawberry.field(description="The song made from this YouTube video, or null.")
    async def song_by_youtube_id(
        self,
        info: Info,
        youtube_id: Annotated[
            str, strawberry.argument(description="The 11-character YouTube video id.")
        ],
    ) -> Song | None:
        async with info.context.read() as repos:
            row = await repos(SongRepository).get_by_youtube_id(youtube_id.strip())
        if row is None:
            return None
        prime_song(info.context.loaders, row)
        return Song.from_model(row)

    @strawberry.field(
        description=(
            "The library, a page at a time (Relay cursor connection), newest first unless "
            "`orderBy` says otherwise."
        )
    )
    async def songs(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        search: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "Only songs whose title or artist contains this text, ignoring case "
                    f"(`%` and `_` match themselves; at most {MAX_SEARCH_LENGTH} characters)."
                )
            ),
        ] = None,
        source: Annotated[
            SongSource | None,
            strawberry.argument(description="Only songs whose audio came from here."),
        ] = None,
        order_by: Annotated[
            SongOrder | None,
            strawberry.argument(description="The order; newest first when left out."),
        ] = None,
    ) -> Connection[Song]:
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise BadUserInput(f"search must be at most {MAX_SEARCH_LENGTH} characters", "search")
        filter = SongFilter(search=(search or "").strip() or None, source=source)
        order = song_order(
            SongSort(str((order_by.field if order_by else SongSortField.DATE_ADDED).value)),
            descending=(order_by.direction if order_by else SortDirection.DESC)
            == SortDirection.DESC,
        )
        request = page_request(first, after, last, before)
        # Only the columns the page's songs are asked for (never a lyrics nobody reads).
        nodes = sub_selections(info.selected_fields, info.field_name, "edges", "node")
        only = selected_columns(Song, nodes, info.schema.config.name_converter)
        try:
            async with info.context.read() as repos:
                page = await repos(SongRepository).list(request, filter, order, columns=only)
        except ValidationError as error:
            raise BadUserInput.of(error) from None
        if only >= ALL_SONG_COLUMNS:
            # Whole rows answer later lookups of the same songs; partial ones must not.
            for row in page.rows:
                prime_song(info.context.loaders, row)

        async def count() -> int:
            async with info.context.read() as repos:
                return await repos(SongRepository).count_matching(filter)

        return Connection[Song].from_page(page, lambda row: Song.from_model(row, only), count)
