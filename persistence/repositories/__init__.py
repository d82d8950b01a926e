"""Repositories: named queries over one session, never committing."""

from persistence.repositories.base import Repository
from persistence.repositories.jobs import JobRepository
from persistence.repositories.persisted_queries import PersistedQueryRepository
from persistence.repositories.songs import SongFilter, SongRepository, SongSort, song_order
from persistence.repositories.tokens import ApiTokenRepository
from persistence.repositories.users import UserRepository

__all__ = [
    "ApiTokenRepository",
    "JobRepository",
    "PersistedQueryRepository",
    "Repository",
    "SongFilter",
    "SongRepository",
    "SongSort",
    "UserRepository",
    "song_order",
]
