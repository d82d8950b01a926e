"""Index song search: trigram indexes on PostgreSQL, an FTS5 trigram table on SQLite.

PostgreSQL: the pg_trgm extension and a GIN trigram index on each folded column serve
terms of three characters or more; one more, on the song's folded text with every
character doubled (`ix_songs_search_pairs`), serves two-character terms, which doubled
have trigrams too.

SQLite: `songs_search`, an FTS5 table with the trigram tokenizer (case-sensitive: the
text is folded already), holding each song's folded title and artist, each closed by
U+001F twice, so that every piece of one or two characters begins some trigram, which
its vocabulary (`songs_search_vocabulary`) lists. Its rows are keyed by
`songs.search_key`, a number given once to each song (a table without an INTEGER PRIMARY
KEY may have its rowids renumbered by VACUUM), and triggers keep it in step with every
insert, update and delete. `songbook search rebuild` fills it again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from persistence.errors import MigrationRefused

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_SEARCH_TABLE = "songs_search"
SQLITE_VOCABULARY = "songs_search_vocabulary"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER songs_search_insert AFTER INSERT ON songs BEGIN
      UPDATE songs SET search_key = (SELECT coalesce(max(search_key), 0) + 1 FROM songs)
        WHERE rowid = new.rowid AND search_key IS NULL;
      INSERT INTO {SQLITE_SEARCH_TABLE} (rowid, title, artist)
        SELECT search_key, title_folded || char(31, 31), artist_folded || char(31, 31)
        FROM songs WHERE rowid = new.rowid;
    END""",
    f"""CREATE TRIGGER songs_search_update AFTER UPDATE OF title_folded, artist_folded
    ON songs BEGIN
      UPDATE {SQLITE_SEARCH_TABLE}
        SET title = new.title_folded || char(31, 31),
            artist = new.artist_folded || char(31, 31)
        WHERE rowid = new.search_key;
    END""",
    f"""CREATE TRIGGER songs_search_delete AFTER DELETE ON songs BEGIN
      DELETE FROM {SQLITE_SEARCH_TABLE} WHERE rowid = old.search_key;
    END""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_postgresql() -> None:
    connection = op.get_bind()
    installed = connection.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    if not installed:
        available = connection.scalar(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        )
        allowed = connection.scalar(
            text("SELECT has_database_privilege(current_database(), 'CREATE')")
        )
        if not available:
            raise MigrationRefused(
                "search needs PostgreSQL's pg_trgm extension, which this server does not "
                "have (it comes with PostgreSQL's contrib modules)"
            )
        if not allowed:
            raise MigrationRefused(
                "search needs PostgreSQL's pg_trgm extension, and this user may not create "
                "it: have an administrator run CREATE EXTENSION pg_trgm in this database"
            )
        try:
            op.execute("CREATE EXTENSION pg_trgm")
        except sa.exc.DBAPIError:
            raise MigrationRefused(
                "search needs PostgreSQL's pg_trgm extension, which could not be created: "
                "have an administrator run CREATE EXTENSION pg_trgm in this database"
            ) from None
    for column in ("title_folded", "artist_folded"):
        op.execute(
            f"CREATE INDEX ix_songs_{column}_trigrams ON songs USING gin ({column} gin_trgm_ops)"
        )
    # Two characters have no trigram; doubled, they have two.
    op.execute(
        "CREATE INDEX ix_songs_search_pairs ON songs USING gin ("
        "(regexp_replace(title_folded || ' ' || artist_folded, '(.)', '\\1\\1', 'g')) "
        "gin_trgm_ops)"
    )


def _upgrade_sqlite() -> None:
    op.execute("ALTER TABLE songs ADD COLUMN search_key INTEGER")
    op.execute("UPDATE songs SET search_key = rowid")
    op.execute("CREATE UNIQUE INDEX uq_songs_search_key ON songs (search_key)")
    op.execute(
        f"CREATE VIRTUAL TABLE {SQLITE_SEARCH_TABLE} USING fts5"
        "(title, artist, tokenize = 'trigram case_sensitive 1')"
    )
    op.execute(
        f"CREATE VIRTUAL TABLE {SQLITE_VOCABULARY} USING fts5vocab({SQLITE_SEARCH_TABLE}, 'row')"
    )
    op.execute(
        f"INSERT INTO {SQLITE_SEARCH_TABLE} (rowid, title, artist) "
        "SELECT search_key, title_folded || char(31, 31), artist_folded || char(31, 31) "
        "FROM songs"
    )
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_songs_search_pairs")
        for column in ("title_folded", "artist_folded"):
            op.execute(f"DROP INDEX ix_songs_{column}_trigrams")
        # pg_trgm stays: other databases' objects, or an administrator, may rely on it.
        return
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER songs_search_{name}")
    op.execute(f"DROP TABLE {SQLITE_VOCABULARY}")
    op.execute(f"DROP TABLE {SQLITE_SEARCH_TABLE}")
    op.execute("DROP INDEX uq_songs_search_key")
    op.execute("ALTER TABLE songs DROP COLUMN search_key")
