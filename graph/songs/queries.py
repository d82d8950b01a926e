"""Reading the library: one song, or a page of songs."""

from typing import Annotated, Any

import strawberry

from graph.core.context import Info, Repositories
from graph.core.errors import BadUserInput
from graph.core.reads import ById, Listed, Listing, Lookup, listing, lookup, reads
from graph.core.relay import After, Before, Connection, First, Last, page_request
from graph.songs.types import Song, SongOrder, SongSortField, SortDirection
from persistence.errors import ValidationError
from persistence.models import SongSource
from persistence.pagination import Count
from persistence.repositories import SongFilter, SongRepository, SongSort, song_order
from persistence.repositories.base import Columns

MAX_SEARCH_LENGTH = 200


async def list_songs(
    repos: Repositories,
    columns: Columns,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    search: str | None,
    source: SongSource | None,
    order_by: SongOrder | None,
) -> Listed:
    """A page of the library as `songs` asks for it (both executors call this)."""
    if search is not None and len(search) > MAX_SEARCH_LENGTH:
        raise BadUserInput(f"search must be at most {MAX_SEARCH_LENGTH} characters", "search")
    filter = SongFilter(search=(search or "").strip() or None, source=source)
    if order_by is not None and order_by.field == SongSortField.RELEVANCE and not filter.search:
        raise BadUserInput("orderBy RELEVANCE needs a search term", "orderBy")
    order = song_order(
        SongSort(str((order_by.field if order_by else SongSortField.DATE_ADDED).value)),
        descending=(order_by.direction if order_by else SortDirection.DESC) == SortDirection.DESC,
    )
    request = page_request(first, after, last, before)
    try:
        page = await repos(SongRepository).list(request, filter, order, columns)
    except ValidationError as error:
        raise BadUserInput.of(error) from None

    async def count(repos: Repositories) -> Count:
        return await repos(SongRepository).count_matching(filter)

    return Listed(page, count)


async def song_by_youtube_id(repos: Repositories, columns: Columns, *, youtube_id: str) -> Any:
    return await repos(SongRepository).get_by_youtube_id(youtube_id.strip(), columns)


@strawberry.type
class SongQuery:
    @strawberry.field(description="The song with this id, or null.", metadata=reads(ById(Song)))
    async def song(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The song's global id.")],
    ) -> Song | None:
        key = Song.key_of(id)
        return None if key is None else await Song.resolve_node(info, key)

    @strawberry.field(
        description="The song made from this YouTube video, or null.",
        metadata=reads(Lookup(song_by_youtube_id)),
    )
    async def song_by_youtube_id(
        self,
        info: Info,
        youtube_id: Annotated[
            str, strawberry.argument(description="The 11-character YouTube video id.")
        ],
    ) -> Song | None:
        return await lookup(info, song_by_youtube_id, youtube_id=youtube_id)  # type: ignore[no-any-return]

    @strawberry.field(
        description=(
            "The library, a page at a time (Relay cursor connection), newest first unless "
            "`orderBy` says otherwise."
        ),
        metadata=reads(Listing(list_songs)),
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
        return await listing(
            info,
            list_songs,
            first=first,
            after=after,
            last=last,
            before=before,
            search=search,
            source=source,
            order_by=order_by,
        )
