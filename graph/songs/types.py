"""Song, its enums and inputs, mapped from the ORM in one place."""

from datetime import datetime
from enum import Enum

import strawberry

from graph.core.context import Info
from graph.core.loaders import JobsPageKey
from graph.core.relay import Connection, Node, to_global_id
from graph.jobs.types import Job
from persistence import models
from persistence.pagination import PageRequest, decode_cursor
from persistence.repositories.jobs import NEWEST_FIRST

# The data layer's enum is the schema's: registered here, so persistence stays unaware.
SongSource = strawberry.enum(models.SongSource, description="Where a song's audio came from.")


@strawberry.enum(description="What songs can be sorted by.")
class SongSortField(Enum):
    DATE_ADDED = "date_added"
    TITLE = "title"
    ARTIST = "artist"


@strawberry.enum(description="Sort direction.")
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(description="How to sort songs; ties are broken by id.")
class SongOrder:
    field: SongSortField = strawberry.field(description="The value songs are sorted by.")
    direction: SortDirection = strawberry.field(
        default=SortDirection.DESC, description="Ascending or descending."
    )


@strawberry.type(description="A song in the karaoke library, with its stems and lyrics.")
class Song(Node):
    db_id: strawberry.Private[str]
    title: str = strawberry.field(description="The song's title.")
    artist: str | None = strawberry.field(description="Who performs the song.")
    album: str | None = strawberry.field(description="The album the song is from.")
    source: models.SongSource | None = strawberry.field(description="Where the audio came from.")
    youtube_id: str | None = strawberry.field(description="The YouTube video id, if any.")
    file_path: str | None = strawberry.field(description="Where the original audio is stored.")
    vocals_path: str | None = strawberry.field(description="Where the vocals stem is stored.")
    instrumental_path: str | None = strawberry.field(
        description="Where the instrumental stem is stored."
    )
    lyrics: str | None = strawberry.field(description="The song's lyrics.")
    date_added: datetime = strawberry.field(description="When the song joined the library.")

    @classmethod
    def from_model(cls, row: models.Song) -> "Song":
        return cls(
            id=to_global_id("Song", row.id),
            db_id=row.id,
            title=row.title,
            artist=row.artist,
            album=row.album,
            source=row.source,
            youtube_id=row.youtube_id,
            file_path=row.file_path,
            vocals_path=row.vocals_path,
            instrumental_path=row.instrumental_path,
            lyrics=row.lyrics,
            date_added=row.date_added,
        )

    @strawberry.field(description="The song's newest processing job.")
    async def latest_job(self, info: Info) -> Job | None:
        row = await info.context.loaders.latest_job_by_song.load(self.db_id)
        return None if row is None else Job.from_model(row)

    @strawberry.field(description="The song's processing jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Job]:
        request = PageRequest(first=first, after=after).validated()
        assert request.first is not None
        if after is not None:
            decode_cursor("after", after, NEWEST_FIRST)
        song_jobs = await info.context.loaders.jobs_by_song.load(
            JobsPageKey(self.db_id, request.first, after)
        )
        song_id = self.db_id

        async def count() -> int:
            count: int = await info.context.loaders.job_count_by_song.load(song_id)
            return count

        return Connection[Job].build(
            [Job.from_model(job) for job in song_jobs.jobs],
            [NEWEST_FIRST.cursor_of(job) for job in song_jobs.jobs],
            has_next_page=song_jobs.has_more,
            has_previous_page=after is not None,
            counter=count,
        )
