"""Fold song titles and artists for search (Python's lower-casing), and index the artist sort.

Search compares lower-cased text; the database's own lower() differs between SQLite
(ASCII only) and PostgreSQL (by locale), so the folded copies are computed in Python,
here for the songs already stored and by the model (persistence.models.fold) for every
song written after.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
ARTIST_SORT = "ix_songs_artist_sort"

songs = sa.table(
    "songs",
    sa.column("id", sa.String),
    sa.column("title", sa.String),
    sa.column("artist", sa.String),
    sa.column("title_folded", sa.Text),
    sa.column("artist_folded", sa.Text),
)


def fold(text: str | None) -> str:
    # The model's rule as it stood at this revision (persistence.models.fold).
    return (text or "").lower()


def upgrade() -> None:
    # NOT NULL from the start (a column added with a default needs no table rebuild on
    # SQLite); every stored song is then folded in batches.
    for column in ("title_folded", "artist_folded"):
        op.add_column("songs", sa.Column(column, sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    update = (
        sa.update(songs)
        .where(songs.c.id == sa.bindparam("key"))
        .values(
            title_folded=sa.bindparam("title_value"), artist_folded=sa.bindparam("artist_value")
        )
    )
    last = ""
    while True:
        rows = connection.execute(
            sa.select(songs.c.id, songs.c.title, songs.c.artist)
            .where(songs.c.id > last)
            .order_by(songs.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            update,
            [
                {"key": id, "title_value": fold(title), "artist_value": fold(artist)}
                for id, title, artist in rows
            ],
        )
        last = rows[-1].id
    # Songs sorted by artist order by coalesce(artist, '') (persistence.repositories.songs).
    op.create_index(ARTIST_SORT, "songs", [sa.text("coalesce(artist, '')"), "id"])


def downgrade() -> None:
    op.drop_index(ARTIST_SORT, table_name="songs")
    with op.batch_alter_table("songs") as batch:
        batch.drop_column("artist_folded")
        batch.drop_column("title_folded")
