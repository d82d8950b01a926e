"""The library's songs: types, queries, mutations and loaders."""

from graph.core.domain import Domain
from graph.songs.mutations import SongMutation
from graph.songs.queries import SongQuery
from graph.songs.types import Song

DOMAIN = Domain(queries=(SongQuery,), mutations=(SongMutation,), types=(Song,))
