"""`songbook search rebuild`: search's own copies of the songs made again from the songs.

The model keeps them as songs are written (persistence.models.fold, the triggers of
migrations/versions/0006_index_song_search.py). A rebuild is for what went around it: rows
written by hand in SQL, or a search table damaged or restored apart from its songs.
It folds every title and artist again, then refills SQLite's search table, or rebuilds
PostgreSQL's search indexes (making any that is missing), in one transaction.
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.database import Database
from persistence.models import Song, fold

BATCH = 5000
# SQLite: every song into the (empty) search table, as the triggers would have put it.
SQLITE_FILL = (
    "INSERT INTO songs_search (rowid, title, artist) SELECT search_key, "
    "title_folded || char(31, 31), artist_folded || char(31, 31) FROM songs"
)
# SQLite: the search table's segments merged into one (1.3 s for 1,000,000 songs, after
# which its reads take about half as long: a short term's trigrams 7.3 ms to 4.5 ms).
SQLITE_OPTIMIZE = "INSERT INTO songs_search (songs_search) VALUES ('optimize')"
# PostgreSQL's search indexes, by name, with what each is (as migrations 0006 and 0007
# made them): trigrams of the doubled text and of each folded column, the set of
# characters, and prefixes. The costliest to build come first (a seed builds them in
# this order, two at a time).
SEARCH_INDEXES = {
    "ix_songs_search_pairs": (
        "USING gin ((regexp_replace(title_folded || ' ' || artist_folded, '(.)', '\\1\\1', "
        "'g')) gin_trgm_ops)"
    ),
    "ix_songs_search_characters": (
        "USING gin ((string_to_array(title_folded || artist_folded, NULL)))"
    ),
    "ix_songs_title_folded_trigrams": "USING gin (title_folded gin_trgm_ops)",
    "ix_songs_artist_folded_trigrams": "USING gin (artist_folded gin_trgm_ops)",
    "ix_songs_title_folded_prefix": (
        "(title_folded text_pattern_ops) INCLUDE (date_added, id, source)"
    ),
    "ix_songs_artist_folded_prefix": "(artist_folded text_pattern_ops)",
}


def create_search_index(name: str) -> str:
    """The statement that makes PostgreSQL's search index `name`, unless it exists."""
    return f"CREATE INDEX IF NOT EXISTS {name} ON songs {SEARCH_INDEXES[name]}"


async def rebuild_search(db: Database) -> tuple[int, int]:
    """Fold every song again and rebuild the search index: (songs, songs refolded)."""
    async with db.transaction() as session:
        songs, refolded = await _refold(session)
        if db.dialect == "sqlite":
            for statement in (
                # A song written while the triggers were absent has no key yet.
                "UPDATE songs SET search_key = rowid + "
                "(SELECT coalesce(max(search_key), 0) FROM songs) WHERE search_key IS NULL",
                "DELETE FROM songs_search",
                SQLITE_FILL,
                SQLITE_OPTIMIZE,
            ):
                await session.execute(sa.text(statement))
        else:
            present = set(
                (
                    await session.execute(
                        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'songs'")
                    )
                ).scalars()
            )
            for name in SEARCH_INDEXES:
                # One missing (a seed killed while it had set them aside) is made anew.
                await session.execute(
                    sa.text(
                        f"REINDEX INDEX {name}" if name in present else create_search_index(name)
                    )
                )
    return songs, refolded


async def _refold(session: AsyncSession) -> tuple[int, int]:
    songs = refolded = 0
    last = ""
    while True:
        rows = (
            await session.execute(
                sa.select(Song.id, Song.title, Song.artist, Song.title_folded, Song.artist_folded)
                .where(Song.id > last)
                .order_by(Song.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return songs, refolded
        stale = [
            {"key": row.id, "title_value": fold(row.title), "artist_value": fold(row.artist)}
            for row in rows
            if (row.title_folded, row.artist_folded) != (fold(row.title), fold(row.artist))
        ]
        if stale:
            songs_table = Song.__table__
            assert isinstance(songs_table, sa.Table)
            await session.execute(
                sa.update(songs_table)
                .where(songs_table.c.id == sa.bindparam("key"))
                .values(
                    title_folded=sa.bindparam("title_value"),
                    artist_folded=sa.bindparam("artist_value"),
                ),
                stale,
            )
        songs += len(rows)
        refolded += len(stale)
        last = rows[-1].id
