"""Changing the library: add, edit and remove songs."""

from typing import Annotated, Any

import strawberry

from graph.core.context import Info
from graph.core.errors import (
    ConflictError,
    NotFoundErrorType,
    ValidationErrorType,
    not_found,
    validation_error,
)
from graph.core.relay import parse_global_id
from graph.jobs.types import Job
from graph.songs.types import Song
from persistence.errors import Conflict, ValidationError
from persistence.models import SongSource
from persistence.validation import check_youtube_source, clean_song

YOUTUBE_ID_CONSTRAINT = "uq_songs_youtube_id"


@strawberry.input(description="A new song. Title and artist must not be empty.")
class CreateSongInput:
    title: str = strawberry.field(description="The song's title (trimmed, 1-300 characters).")
    artist: str = strawberry.field(description="The performer (trimmed, 1-300 characters).")
    album: str | None = strawberry.field(default=None, description="The album.")
    source: SongSource = strawberry.field(description="Where the audio comes from.")
    youtube_id: str | None = strawberry.field(
        default=None, description="The 11-character YouTube video id; required for YOUTUBE."
    )
    file_path: str | None = strawberry.field(default=None, description="The original audio.")
    vocals_path: str | None = strawberry.field(default=None, description="The vocals stem.")
    instrumental_path: str | None = strawberry.field(
        default=None, description="The instrumental stem."
    )
    lyrics: str | None = strawberry.field(default=None, description="The lyrics.")

    def values(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "artist": self.artist,
            "album": self.album,
            "source": self.source,
            "youtube_id": self.youtube_id,
            "file_path": self.file_path,
            "vocals_path": self.vocals_path,
            "instrumental_path": self.instrumental_path,
            "lyrics": self.lyrics,
        }


@strawberry.input(description="Changes to a song; fields left out stay as they are.")
class UpdateSongInput:
    id: strawberry.ID = strawberry.field(description="The song to change.")
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new title (trimmed, 1-300 characters)."
    )
    artist: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new performer (trimmed, 1-300 characters)."
    )
    album: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new album; null clears it."
    )
    source: SongSource | None = strawberry.field(
        default=strawberry.UNSET, description="Where the audio comes from; never null."
    )
    youtube_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The 11-character YouTube video id; a YOUTUBE song keeps one.",
    )
    file_path: str | None = strawberry.field(
        default=strawberry.UNSET, description="The original audio; null clears it."
    )
    vocals_path: str | None = strawberry.field(
        default=strawberry.UNSET, description="The vocals stem; null clears it."
    )
    instrumental_path: str | None = strawberry.field(
        default=strawberry.UNSET, description="The instrumental stem; null clears it."
    )
    lyrics: str | None = strawberry.field(
        default=strawberry.UNSET, description="The lyrics; null clears them."
    )

    def values(self) -> dict[str, Any]:
        names = (
            "title artist album source youtube_id file_path vocals_path instrumental_path lyrics"
        )
        return {
            name: getattr(self, name)
            for name in names.split()
            if getattr(self, name) is not strawberry.UNSET
        }


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
    CreateSongSuccess | ValidationErrorType | ConflictError,
    strawberry.union("CreateSongPayload", description="The result of createSong."),
]
CreateSongWithJobPayload = Annotated[
    CreateSongWithJobSuccess | ValidationErrorType | ConflictError,
    strawberry.union("CreateSongWithJobPayload", description="The result of createSongWithJob."),
]
UpdateSongPayload = Annotated[
    UpdateSongSuccess | ValidationErrorType | ConflictError | NotFoundErrorType,
    strawberry.union("UpdateSongPayload", description="The result of updateSong."),
]
DeleteSongPayload = Annotated[
    DeleteSongSuccess | ValidationErrorType | NotFoundErrorType,
    strawberry.union("DeleteSongPayload", description="The result of deleteSong."),
]


def song_id_of(global_id: str, field: str = "id") -> str | None:
    """The database id of a Song's global id; None for another type's id."""
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise ValidationError(field, f"{field} is not a valid id")
    return parsed[1] if parsed[0] == "Song" else None


async def _conflict(info: Info, error: Conflict, youtube_id: str | None) -> ConflictError:
    """The conflict as data, naming the song that already has the YouTube id."""
    if error.constraint != YOUTUBE_ID_CONSTRAINT or youtube_id is None:
        raise error
    async with info.context.read() as repos:
        existing = await repos.songs.get_by_youtube_id(youtube_id)
    return ConflictError(
        message=f"A song with YouTube id {youtube_id} already exists",
        existing_song=None if existing is None else Song.from_model(existing),
    )


@strawberry.type
class SongMutation:
    @strawberry.mutation(description="Add a song to the library.")
    async def create_song(self, info: Info, input: CreateSongInput) -> CreateSongPayload:
        try:
            values = clean_song(input.values(), creating=True)
            async with info.context.write() as repos:
                row = await repos.songs.create(**values)
        except ValidationError as error:
            return validation_error(error)
        except Conflict as error:
            return await _conflict(info, error, values.get("youtube_id"))
        info.context.loaders.prime_song(row)
        return CreateSongSuccess(song=Song.from_model(row))

    @strawberry.mutation(description="Add a song and its pending processing job, both or neither.")
    async def create_song_with_job(
        self, info: Info, input: CreateSongInput
    ) -> CreateSongWithJobPayload:
        try:
            values = clean_song(input.values(), creating=True)
            async with info.context.write() as repos:
                song = await repos.songs.create(**values)
                job = await repos.jobs.create(song_id=song.id)
        except ValidationError as error:
            return validation_error(error)
        except Conflict as error:
            return await _conflict(info, error, values.get("youtube_id"))
        info.context.loaders.prime_song(song)
        info.context.loaders.prime_job(job)
        return CreateSongWithJobSuccess(song=Song.from_model(song), job=Job.from_model(job))

    @strawberry.mutation(description="Change a song's fields.")
    async def update_song(self, info: Info, input: UpdateSongInput) -> UpdateSongPayload:
        values: dict[str, Any] = {}
        try:
            song_id = song_id_of(input.id)
            if song_id is None:
                return not_found(input.id, "song")
            values = clean_song(input.values(), creating=False)
            async with info.context.write() as repos:
                row = await repos.songs.get(song_id)
                if row is None:
                    return not_found(input.id, "song")
                check_youtube_source(
                    values.get("source", row.source), values.get("youtube_id", row.youtube_id)
                )
                row = await repos.songs.update(row, **values)
        except ValidationError as error:
            return validation_error(error)
        except Conflict as error:
            return await _conflict(info, error, values.get("youtube_id"))
        info.context.loaders.prime_song(row)
        return UpdateSongSuccess(song=Song.from_model(row))

    @strawberry.mutation(description="Remove a song; its jobs go with it.")
    async def delete_song(self, info: Info, id: strawberry.ID) -> DeleteSongPayload:
        try:
            song_id = song_id_of(id)
        except ValidationError as error:
            return validation_error(error)
        if song_id is None:
            return not_found(id, "song")
        async with info.context.write() as repos:
            row = await repos.songs.get(song_id)
            if row is None:
                return not_found(id, "song")
            await repos.songs.delete(row)
        info.context.loaders.forget_song(song_id)
        return DeleteSongSuccess(deleted_song_id=id)
