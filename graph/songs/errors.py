"""The songs domain's expected failures."""

from typing import TYPE_CHECKING, Annotated

import strawberry

from graph.core.errors import Error

if TYPE_CHECKING:
    from graph.songs.types import Song


# Named ConflictError in the schema, which clients already switch on; it only ever
# means a taken YouTube id.
@strawberry.type(name="ConflictError", description="Another song already has this YouTube id.")
class YouTubeIdTaken(Error):
    existing_song: Annotated["Song", strawberry.lazy("graph.songs.types")] | None = (
        strawberry.field(description="The song that holds the YouTube id.")
    )
