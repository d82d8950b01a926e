"""Song, its enums and sort order."""

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

import strawberry

from graph.core.fields import FromColumns, column, described_enum
from graph.core.loaders import Loader
from graph.core.reads import to_one, to_page
from graph.core.relay import Connection, Node
from graph.jobs.loaders import job_count_by_song, job_page_by_song, latest_job_by_song
from graph.jobs.types import Job
from graph.songs.loaders import song_by_id
from persistence import models
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
    RELEVANCE = strawberry.enum_value(
        "relevance",
        description="How well the title answers `search` (only with it): the whole title, "
        "then its start, a word's start, anywhere in it, the artist only; newest first "
        "among equals (DESC, the most relevant first).",
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

    latest_job: Job | None = to_one(
        latest_job_by_song, key=models.Song.id, description="The song's newest processing job."
    )
    jobs: Connection[Job] = to_page(
        job_page_by_song,
        job_count_by_song,
        key=models.Song.id,
        order=NEWEST_FIRST,
        description="The song's processing jobs, newest first.",
    )
    row: strawberry.Private[Any] = None  # the row the object was read from
    by_id: ClassVar[Loader[str, Any]] = song_by_id
