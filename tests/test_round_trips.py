"""Round trips to the database, transaction control included: what a request waits for."""

import httpx
import pytest

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from tests.benchmarks.ceiling import LIBRARY
from tests.conftest import GraphQLClient, RoundTripCounter, StatementCounter
from tests.factories import add_songs, global_id

# The library page (tests/benchmarks/ceiling.py): one page of songs, one batch of their
# latest jobs, and no transaction around either. The compiled read path sends both on one
# connection; Strawberry's path (SONGBOOK_COMPILED=off) checks one out per batch. On
# PostgreSQL each checkout is also pre-pinged (SONGBOOK_DB_POOL_PRE_PING) with a bare `;`,
# outside any transaction (asyncpg's dialect alone would wrap it in BEGIN ... ROLLBACK).
LIBRARY_ROUND_TRIPS = {
    True: {"sqlite": 2, "postgresql": 2 + 1},
    False: {"sqlite": 2, "postgresql": 2 + 2},
}


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "strawberry"])
async def test_the_library_page_sends_no_transaction_control_of_its_own(
    compiled: bool, db: Database, round_trips: RoundTripCounter
) -> None:
    await add_songs(db, 50, jobs_per_song=2)
    app = create_app(Settings(compiled=compiled), db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://songbook.test"
    ) as http:
        round_trips.reset()
        data = await GraphQLClient(http).data(LIBRARY, first=50)
    assert len(data["songs"]["edges"]) == 50
    assert round_trips.count == LIBRARY_ROUND_TRIPS[compiled][db.dialect], round_trips.statements
    assert all(s == "PING" for s in round_trips.transaction_control), round_trips.statements


async def test_a_write_keeps_its_transaction(db: Database, round_trips: RoundTripCounter) -> None:
    [song] = await add_songs(db, 1)
    round_trips.reset()
    async with db.transaction() as session:
        song.title = "Renamed"
        await session.merge(song)
    control = [s.split()[0].upper() for s in round_trips.transaction_control if s != "PING"]
    # The unit of work's own, and nothing around the pre-ping.
    assert control[0] == "BEGIN" and control[-1] == "COMMIT", round_trips.statements


async def test_a_page_of_songs_fetches_lyrics_only_when_asked(
    gql: GraphQLClient, db: Database, statements: StatementCounter
) -> None:
    await add_songs(db, 3, lyrics="la " * 1000)
    statements.reset()
    data = await gql.data("{ songs { edges { node { title } } } }")
    assert data["songs"]["edges"][0]["node"]["title"] == "Song 002"
    [page] = statements.statements
    assert "lyrics" not in page and "file_path" not in page, page
    statements.reset()
    # Through a fragment, under an alias.
    query = """{ songs { edges { node { ...Words } } } }
      fragment Words on Song { id title: lyrics }"""
    data = await gql.data(query)
    assert data["songs"]["edges"][0]["node"]["title"] == "la " * 1000
    assert "lyrics" in statements.statements[0]


async def test_a_partly_loaded_song_does_not_answer_a_later_lookup(
    gql: GraphQLClient, db: Database
) -> None:
    songs = await add_songs(db, 2, lyrics="words")
    query = """query($id: ID!) {
      songs { edges { node { title } } }
      song(id: $id) { title lyrics album }
    }"""
    data = await gql.data(query, id=global_id("Song", songs[0].id))
    assert data["song"] == {"title": "Song 000", "lyrics": "words", "album": None}
