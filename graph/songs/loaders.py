"""The songs domain's dataloaders."""

from collections.abc import Sequence
from typing import Any

from graph.core.loaders import Loader, RequestLoaders
from graph.jobs.loaders import forget_song_jobs
from persistence.models import Song
from persistence.repositories import SongRepository
from persistence.repositories.base import Columns, Reader


async def _songs_by_id(session: Reader, ids: Sequence[str], columns: Columns) -> list[Any]:
    found = await SongRepository(session).get_many(ids, columns)
    return [found.get(id) for id in ids]


song_by_id = Loader[str, Song | None](_songs_by_id)


def prime_song(loaders: RequestLoaders, song: Song) -> None:
    """After a write to `song`: later reads in the request see it as written."""
    loaders.prime(song_by_id, song.id, song)


def forget_song(loaders: RequestLoaders, song_id: str) -> None:
    """After `song_id` was deleted, with its jobs."""
    loaders.clear(song_by_id, song_id)
    forget_song_jobs(loaders, song_id)
