"""Index the folded title and artist by prefix, and (PostgreSQL) each song's characters.

- Prefixes: the songs whose folded title begins with the term are one range of
  `ix_songs_title_folded_prefix`, which carries what orders them by relevance (they are
  its first: the whole title, then its start): a page of them is read from the index
  alone, where the search index would gather every song holding the term, to sort them
  all. On PostgreSQL both folded columns are indexed so (`text_pattern_ops`, so that a
  range of one prefix is served whatever the database's collation): a search's
  totalCount stops at 10,000, and a term that begins 10,001 titles, or 10,001 artists,
  is past the cap for certain, counted from the index alone (a common artist's name:
  33 to 60 ms of 1,000,000 songs, against 1.5 ms).
- Characters: a one-character term has no trigram, and a rare one (`%`, `z`) was found
  by reading every song (about 650 ms of 1,000,000). A GIN index of the set of
  characters in each song's folded title and artist finds the songs holding one exactly.
  The table is analyzed after, so that the planner knows which characters are common.

SQLite counts from its search table alone, and finds one character through the trigrams
it begins (migration 0006): it needs only the title's.

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


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(
            "CREATE INDEX ix_songs_title_folded_prefix ON songs "
            "(title_folded, date_added, id, source)"
        )
        return
    op.execute(
        "CREATE INDEX ix_songs_title_folded_prefix ON songs (title_folded text_pattern_ops) "
        "INCLUDE (date_added, id, source)"
    )
    op.execute(
        "CREATE INDEX ix_songs_artist_folded_prefix ON songs (artist_folded text_pattern_ops)"
    )
    op.execute(
        "CREATE INDEX ix_songs_search_characters ON songs USING gin "
        "((string_to_array(title_folded || artist_folded, NULL)))"
    )
    op.execute("ANALYZE songs")


def downgrade() -> None:
    op.execute("DROP INDEX ix_songs_title_folded_prefix")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_songs_artist_folded_prefix")
    op.execute("DROP INDEX ix_songs_search_characters")
