"""Changing the library: add, edit and remove songs."""

from typing import Annotated, Any

import strawberry

from graph.core.context import Info
from graph.core.errors import InvalidInput, NotFoundError
from graph.core.fields import column, column_values
from graph.core.permissions import IsEditor
from graph.jobs.loaders import prime_job
from graph.jobs.types import Job
from graph.songs.errors import YouTubeIdTaken
from graph.songs.loaders import forget_song, prime_song
from graph.songs.types import Song, SongSource
from persistence import models
from persistence.errors import Conflict, ValidationError
from persistence.repositories import JobRepository, SongRepository
from persistence.validation import check_youtube_source, clean_song

YOUTUBE_ID_CONSTRAINT = "uq_songs_youtube_id"


@strawberry.input(description="A new song. Title and artist must not be empty.")
class CreateSongInput:
    title: str = column(
        models.Song.title, description="The song's title (trimmed, 1-300 characters)."
    )
    artist: str = column(
        models.Song.artist, description="The performer (trimmed, 1-300 characters)."
    )
    album: str | None = column(models.Song.album, default=None, description="The album.")
    source: SongSource = column(models.Song.source, description="Where the audio comes from.")
    youtube_id: str | None = column(
        models.Song.youtube_id,
        default=None,
        description="The 11-character YouTube video id; required for YOUTUBE.",
    )
    file_path: str | None = column(
        models.Song.file_path, default=None, description="The original audio."
    )
    vocals_path: str | None = column(
        models.Song.vocals_path, default=None, description="The vocals stem."
    )
    instrumental_path: str | None = column(
        models.Song.instrumental_path, default=None, description="The instrumental stem."
    )
    lyrics: str | None = column(models.Song.lyrics, default=None, description="The lyrics.")


@strawberry.input(description="Changes to a song; fields left out stay as they are.")
class UpdateSongInput:
    id: strawberry.ID = strawberry.field(description="The song to change.")
    title: str | None = column(
        models.Song.title,
        default=strawberry.UNSET,
        description="A new title (trimmed, 1-300 characters).",
    )
    artist: str | None = column(
        models.Song.artist,
        default=strawberry.UNSET,
        description="A new performer (trimmed, 1-300 characters).",
    )
    album: str | None = column(
        models.Song.album, default=strawberry.UNSET, description="A new album; null clears it."
    )
    source: SongSource | None = column(
        models.Song.source,
        default=strawberry.UNSET,
        description="Where the audio comes from; never null.",
    )
    youtube_id: str | None = column(
        models.Song.youtube_id,
        default=strawberry.UNSET,
        description="The 11-character YouTube video id; a YOUTUBE song keeps one.",
    )
    file_path: str | None = column(
        models.Song.file_path,
        default=strawberry.UNSET,
        description="The original audio; null clears it.",
    )
    vocals_path: str | None = column(
        models.Song.vocals_path,
        default=strawberry.UNSET,
        description="The vocals stem; null clears it.",
    )
    instrumental_path: str | None = column(
        models.Song.instrumental_path,
        default=strawberry.UNSET,
        description="The instrumental stem; null clears it.",
    )
    lyrics: str | None = column(
        models.Song.lyrics, default=strawberry.UNSET, description="The lyrics; null clears them."
    )


@strawberry.type(description="The song was added.")
class CreateSongSuccess:
    song: Song = strawberry.field(description="The new song.")


@strawberry.type(description="The song was added with a pending processing job.")
class CreateSongWithJobSuccess:
    song: Song = strawberry.field(description="The new song.")
    job: Job = strawberry.field(description="Its pending job.")


@strawberry.type(description="The song was changed.")
class UpdateSongSuccess:
    song: Song = strawberry.field(description="The song as it is now.")


@strawberry.type(description="The song and its jobs were removed.")
class DeleteSongSuccess:
    deleted_song_id: strawberry.ID = strawberry.field(description="The removed song's id.")


CreateSongPayload = Annotated[
    CreateSongSuccess | InvalidInput | YouTubeIdTaken,
    strawberry.union("CreateSongPayload", description="The result of createSong."),
]
CreateSongWithJobPayload = Annotated[
    CreateSongWithJobSuccess | InvalidInput | YouTubeIdTaken,
    strawberry.union("CreateSongWithJobPayload", description="The result of createSongWithJob."),
]
UpdateSongPayload = Annotated[
    UpdateSongSuccess | InvalidInput | YouTubeIdTaken | NotFoundError,
    strawberry.union("UpdateSongPayload", description="The result of updateSong."),
]
DeleteSongPayload = Annotated[
    DeleteSongSuccess | InvalidInput | NotFoundError,
    strawberry.union("DeleteSongPayload", description="The result of deleteSong."),
]


async def _taken(info: Info, error: Conflict, youtube_id: str | None) -> YouTubeIdTaken:
    """The conflict as data, naming the song that already has the YouTube id."""
    if error.constraint != YOUTUBE_ID_CONSTRAINT or youtube_id is None:
        raise error
    async with info.context.read() as repos:
        existing = await repos(SongRepository).get_by_youtube_id(youtube_id)
    return YouTubeIdTaken(
        message=f"A song with YouTube id {youtube_id} already exists",
        existing_song=None if existing is None else Song.from_model(existing),
    )


@strawberry.type
class SongMutation:
    @strawberry.mutation(permission_classes=[IsEditor], description="Add a song to the library.")
    async def create_song(
        self,
        info: Info,
        input: Annotated[CreateSongInput, strawberry.argument(description="The new song.")],
    ) -> CreateSongPayload:
        try:
            values = clean_song(column_values(input), creating=True)
            async with info.context.write() as repos:
                row = await repos(SongRepository).create(**values)
        except ValidationError as error:
            return InvalidInput.of(error)
        except Conflict as error:
            return await _taken(info, error, values.get("youtube_id"))
        prime_song(info.context.loaders, row)
        return CreateSongSuccess(song=Song.from_model(row))

    @strawberry.mutation(
        permission_classes=[IsEditor],
        description="Add a song and its pending processing job, both or neither.",
    )
    async def create_song_with_job(
        self,
        info: Info,
        input: Annotated[CreateSongInput, strawberry.argument(description="The new song.")],
    ) -> CreateSongWithJobPayload:
        try:
            values = clean_song(column_values(input), creating=True)
            async with info.context.write() as repos:
                song = await repos(SongRepository).create(**values)
                job = await repos(JobRepository).create(song_id=song.id)
        except ValidationError as error:
            return InvalidInput.of(error)
        except Conflict as error:
            return await _taken(info, error, values.get("youtube_id"))
        prime_song(info.context.loaders, song)
        prime_job(info.context.loaders, job)
        return CreateSongWithJobSuccess(song=Song.from_model(song), job=Job.from_model(job))

    @strawberry.mutation(permission_classes=[IsEditor], description="Change a song's fields.")
    async def update_song(
        self,
        info: Info,
        input: Annotated[
            UpdateSongInput, strawberry.argument(description="The song and what to change.")
        ],
    ) -> UpdateSongPayload:
        song_id = Song.key_of(input.id)
        if song_id is None:
            return NotFoundError.of(input.id, "song")
        values: dict[str, Any] = {}
        try:
            values = clean_song(column_values(input), creating=False)
            async with info.context.write() as repos:
                songs = repos(SongRepository)
                row = await songs.get(song_id)
                if row is None:
                    return NotFoundError.of(input.id, "song")
                check_youtube_source(
                    values.get("source", row.source), values.get("youtube_id", row.youtube_id)
                )
                row = await songs.update(row, **values)
        except ValidationError as error:
            return InvalidInput.of(error)
        except Conflict as error:
            return await _taken(info, error, values.get("youtube_id"))
        prime_song(info.context.loaders, row)
        return UpdateSongSuccess(song=Song.from_model(row))

    @strawberry.mutation(
        permission_classes=[IsEditor], description="Remove a song; its jobs go with it."
    )
    async def delete_song(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The song to remove.")],
    ) -> DeleteSongPayload:
        song_id = Song.key_of(id)
        if song_id is None:
            return NotFoundError.of(id, "song")
        async with info.context.write() as repos:
            songs = repos(SongRepository)
            row = await songs.get(song_id)
            if row is None:
                return NotFoundError.of(id, "song")
            await songs.delete(row)
        forget_song(info.context.loaders, song_id)
        return DeleteSongSuccess(deleted_song_id=id)
