"""The tables: songs, their processing jobs, users, and the API tokens that call the API."""

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from persistence.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def fold(text: str | None) -> str:
    """A title or an artist as search compares it: Python's Unicode lower-casing. Folded
    here, not by the database, whose lower() differs (SQLite folds ASCII only, and
    PostgreSQL as its locale says), so both find exactly the same songs."""
    return (text or "").lower()


def _folded(column: str) -> Any:
    """The default of `column`'s folded copy, for inserts that do not set it (Core's)."""

    def default(context: Any) -> str:
        return fold(context.get_current_parameters().get(column))

    return default


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on
    the way out; PostgreSQL's `timestamptz` round-trips the same values unchanged.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SongSource(enum.StrEnum):
    YOUTUBE = "youtube"
    UPLOAD = "upload"
    LOCAL = "local"


class TokenRole(enum.StrEnum):
    """The roles an API token may carry: graph.core.identity.Role less `none`."""

    READER = "reader"
    EDITOR = "editor"
    WORKER = "worker"
    ADMIN = "admin"


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


def _values(enum_class: type[enum.StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


# What the migrations build beside the models' tables and indexes, in shapes reflection
# cannot read back (an expression index, trigram indexes, a full-text table and what it
# keeps): left out when the models are compared with the database.
MIGRATION_OWNED = frozenset(
    {
        "ix_songs_artist_sort",
        "ix_songs_title_folded_trigrams",
        "ix_songs_artist_folded_trigrams",
        "ix_songs_search_pairs",
        "ix_songs_title_folded_prefix",
        "ix_songs_artist_folded_prefix",
        "ix_songs_search_characters",
        # SQLite: the search table's key (migrations/versions/0006_index_song_search.py).
        "search_key",
        "uq_songs_search_key",
    }
)


class Base(DeclarativeBase):
    """Declarative base whose MetaData names every constraint and index the same way."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Song(Base):
    __tablename__ = "songs"
    __table_args__ = (
        sa.Index(None, "date_added", "id"),
        sa.Index(None, "title", "id"),
        sa.Index(None, "source", "date_added", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(sa.String(300))
    artist: Mapped[str | None] = mapped_column(sa.String(300))
    album: Mapped[str | None] = mapped_column(sa.String(300))
    source: Mapped[SongSource | None] = mapped_column(
        sa.Enum(
            SongSource,
            name="source",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=_values,
            validate_strings=True,
        )
    )
    youtube_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    file_path: Mapped[str | None] = mapped_column(sa.String(1024))
    vocals_path: Mapped[str | None] = mapped_column(sa.String(1024))
    instrumental_path: Mapped[str | None] = mapped_column(sa.String(1024))
    lyrics: Mapped[str | None] = mapped_column(sa.Text, info={"max_length": 100_000})
    date_added: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    # What search reads (see `fold`): kept by the model whenever a title or artist is set,
    # never loaded with a song.
    title_folded: Mapped[str] = mapped_column(
        sa.Text, default=_folded("title"), server_default="", deferred=True
    )
    artist_folded: Mapped[str] = mapped_column(
        sa.Text, default=_folded("artist"), server_default="", deferred=True
    )

    jobs: Mapped[list["Job"]] = relationship(
        back_populates="song", lazy="raise", passive_deletes=True
    )

    @validates("title", "artist")
    def _fold(self, key: str, value: str | None) -> str | None:
        setattr(self, f"{key}_folded", fold(value))
        return value

    @property
    def artist_sort_key(self) -> str:
        """The value songs are ordered by when sorted by artist (no artist sorts first)."""
        return self.artist or ""


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        sa.Index(None, "song_id", "created_at", "id"),
        sa.Index(None, "status", "created_at"),
        sa.Index(None, "created_at", "id"),
        sa.Index(None, "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    song_id: Mapped[str] = mapped_column(sa.ForeignKey("songs.id", ondelete="CASCADE"))
    status: Mapped[JobStatus] = mapped_column(
        sa.Enum(
            JobStatus,
            name="status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=_values,
            validate_strings=True,
        ),
        default=JobStatus.PENDING,
        server_default=JobStatus.PENDING.value,
    )
    progress: Mapped[int] = mapped_column(default=0, server_default="0")
    message: Mapped[str | None] = mapped_column(sa.Text, info={"max_length": 2_000})
    # The worker that holds a PROCESSING job, and until when; a lapsed lease frees the job.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )

    song: Mapped[Song] = relationship(back_populates="jobs", lazy="raise")


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    # The `sub` of the JWTs this person signs in with; None for users made by createUser.
    # 255 is OpenID Connect's longest subject.
    subject: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )


class PersistedQuery(Base):
    """A GraphQL document registered by its SHA-256 (automatic persisted queries).

    Shared by every server process on the database; the least recently used rows are
    evicted past a limit, so `last_used_at` is refreshed now and then, not on every hit.
    """

    __tablename__ = "persisted_queries"
    __table_args__ = (sa.Index(None, "last_used_at", "sha256"),)

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    document: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    last_used_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )


class ApiToken(Base):
    """A bearer token for a program (a worker, a script): its name, role and SHA-256.

    The token itself is shown once when it is made and never stored. A revoked token stays
    as a record, so its name may be given to a new token but no two active tokens share one.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.Index(
            "uq_api_tokens_name_active",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[TokenRole] = mapped_column(
        sa.Enum(
            TokenRole,
            name="role",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=_values,
            validate_strings=True,
        )
    )
    # hashlib.sha256(token).hexdigest(): enough to recognise the token, useless to present.
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=sa.func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
