"""Index the folded title and artist by prefix, and each song's characters (PostgreSQL).

- Prefixes: a search's totalCount stops at 10,000, and a term that begins 10,001 titles,
  or 10,001 artists, is past the cap for certain. These b-tree indexes
  (`text_pattern_ops`, so that they serve the range of one prefix whatever the
  database's collation) count such songs from the index alone, where the trigram
  indexes would gather every song holding the term and read each back to check it (a
  common artist's name: 33 to 60 ms of 1,000,000 songs, against 1.5 ms).
- Characters: a one-character term has no trigram, and a rare one (`%`, `z`) was found
  by reading every song (about 650 ms of 1,000,000). A GIN index of the set of
  characters in each song's folded title and artist finds the songs holding one exactly.
  The table is analyzed after, so that the planner knows which characters are common.

SQLite counts from its search table alone, and finds one character through the trigrams
it begins (migration 0006): it needs neither.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("title_folded", "artist_folded")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"CREATE INDEX ix_songs_{column}_prefix ON songs ({column} text_pattern_ops)")
    op.execute(
        "CREATE INDEX ix_songs_search_characters ON songs USING gin "
        "((string_to_array(title_folded || artist_folded, NULL)))"
    )
    op.execute("ANALYZE songs")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_songs_search_characters")
    for column in COLUMNS:
        op.execute(f"DROP INDEX ix_songs_{column}_prefix")
