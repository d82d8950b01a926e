"""Song, its enums and sort order."""

from collections.abc import Set
from datetime import datetime
from enum import Enum
from typing import Self

import strawberry

from graph.core.context import Info
from graph.core.errors import BadUserInput
from graph.core.fields import FromColumns, column, described_enum
from graph.core.relay import After, Before, Connection, First, Last, Node, page_request
from graph.jobs.loaders import job_count_by_song, job_page_by_song, latest_job_by_song
from graph.jobs.types import Job
from graph.songs.loaders import song_by_id
from persistence import models
from persistence.errors import ValidationError
from persistence.repositories.jobs import NEWEST_FIRST

# The data layer's enum is the schema's: registered here, so persistence stays unaware.
SongSource = models.SongSource
described_enum(
    SongSource,
    description="Where a song's audio came from.",
    values={
        SongSource.YOUTUBE: "A YouTube video, named by its `youtubeId`.",
        SongSource.UPLOAD: "A file a user uploaded.",
        SongSource.LOCAL: "A file already on the server.",
    },
)


@strawberry.enum(description="What songs can be sorted by.")
class SongSortField(Enum):
    DATE_ADDED = strawberry.enum_value("date_added", description="When the song was added.")
    TITLE = strawberry.enum_value("title", description="The title, then the id.")
    ARTIST = strawberry.enum_value(
        "artist", description="The artist (songs without one first), then the id."
    )


@strawberry.enum(description="Sort direction.")
class SortDirection(Enum):
    ASC = strawberry.enum_value("asc", description="Smallest, earliest or A first.")
    DESC = strawberry.enum_value("desc", description="Largest, latest or Z first.")


@strawberry.input(description="How to sort songs; ties are broken by id.")
class SongOrder:
    field: SongSortField = strawberry.field(description="The value songs are sorted by.")
    direction: SortDirection = strawberry.field(
        default=SortDirection.DESC, description="Ascending or descending."
    )


@strawberry.type(description="A song in the karaoke library, with its stems and lyrics.")
class Song(Node, FromColumns):
    db_id: strawberry.Private[str]
    title: str = column(models.Song.title, description="The song's title.")
    artist: str | None = column(models.Song.artist, description="Who performs the song.")
    album: str | None = column(models.Song.album, description="The album the song is from.")
    source: models.SongSource | None = column(
        models.Song.source, description="Where the audio came from."
    )
    youtube_id: str | None = column(
        models.Song.youtube_id, description="The YouTube video id, if any."
    )
    file_path: str | None = column(
        models.Song.file_path, description="Where the original audio is stored."
    )
    vocals_path: str | None = column(
        models.Song.vocals_path, description="Where the vocals stem is stored."
    )
    instrumental_path: str | None = column(
        models.Song.instrumental_path, description="Where the instrumental stem is stored."
    )
    lyrics: str | None = column(models.Song.lyrics, description="The song's lyrics.")
    date_added: datetime = column(
        models.Song.date_added, description="When the song joined the library."
    )

    @classmethod
    def from_model(cls, row: models.Song, only: Set[str] | None = None) -> Self:
        """`only`: the columns `row` was loaded with, when not all (see FromColumns)."""
        return cls.from_columns(row, only=only, id=cls.global_id(row.id), db_id=row.id)

    @classmethod
    async def resolve_node(cls, info: Info, key: str) -> Self | None:
        row = await info.context.loaders.load(song_by_id, key)
        return None if row is None else cls.from_model(row)

    @strawberry.field(description="The song's newest processing job.")
    async def latest_job(self, info: Info) -> Job | None:
        row = await info.context.loaders.load(latest_job_by_song, self.db_id)
        return None if row is None else Job.from_model(row)

    @strawberry.field(description="The song's processing jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Job]:
        request = page_request(first, after, last, before)
        try:
            request.bounds(NEWEST_FIRST)  # a bad cursor fails this field, not the batch
        except ValidationError as error:
            raise BadUserInput.of(error) from None
        page = await info.context.loaders.load(job_page_by_song, (self.db_id, request))
        song_id, loaders = self.db_id, info.context.loaders

        async def count() -> int:
            return await loaders.load(job_count_by_song, song_id)

        return Connection[Job].from_page(page, Job.from_model, count)
