"""Create the songs, jobs and users tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("youtube", "upload", "local")
STATUSES = ("pending", "processing", "completed", "failed")


def _enum(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "songs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("artist", sa.String(300), nullable=True),
        sa.Column("album", sa.String(300), nullable=True),
        sa.Column("source", _enum(SOURCES, "source"), nullable=True),
        sa.Column("youtube_id", sa.String(64), nullable=True),
        sa.Column("file_path", sa.String(1024), nullable=True),
        sa.Column("vocals_path", sa.String(1024), nullable=True),
        sa.Column("instrumental_path", sa.String(1024), nullable=True),
        sa.Column("lyrics", sa.Text(), nullable=True),
        _timestamp("date_added"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_songs")),
        sa.UniqueConstraint("youtube_id", name=op.f("uq_songs_youtube_id")),
    )
    op.create_index(op.f("ix_songs_date_added_id"), "songs", ["date_added", "id"])
    op.create_index(op.f("ix_songs_title_id"), "songs", ["title", "id"])
    op.create_index(op.f("ix_songs_source_date_added_id"), "songs", ["source", "date_added", "id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("song_id", sa.String(36), nullable=False),
        sa.Column("status", _enum(STATUSES, "status"), server_default="pending", nullable=False),
        sa.Column("progress", sa.Integer(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 100", name=op.f("ck_jobs_progress_range")
        ),
        sa.ForeignKeyConstraint(
            ["song_id"], ["songs.id"], name=op.f("fk_jobs_song_id_songs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_song_id_created_at_id"), "jobs", ["song_id", "created_at", "id"])
    op.create_index(op.f("ix_jobs_status_created_at"), "jobs", ["status", "created_at"])
    op.create_index(op.f("ix_jobs_created_at_id"), "jobs", ["created_at", "id"])

    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("jobs")
    op.drop_table("songs")
