"""Round trips to the database, transaction control included: what a request waits for."""

from persistence.database import Database
from tests.benchmarks.ceiling import LIBRARY
from tests.conftest import GraphQLClient, RoundTripCounter
from tests.factories import add_songs

# The library page (tests/benchmarks/ceiling.py): one page of songs, one batch of their
# latest jobs, and no transaction around either. On PostgreSQL each of the two pooled
# connections is also pre-pinged (SONGBOOK_DB_POOL_PRE_PING), which asyncpg's dialect does
# inside a transaction of its own: BEGIN, `;`, ROLLBACK.
LIBRARY_ROUND_TRIPS = {"sqlite": 2, "postgresql": 2 + 2 * 3}


async def test_the_library_page_sends_no_transaction_control_of_its_own(
    gql: GraphQLClient, db: Database, round_trips: RoundTripCounter
) -> None:
    await add_songs(db, 50, jobs_per_song=2)
    round_trips.reset()
    data = await gql.data(LIBRARY, first=50)
    assert len(data["songs"]["edges"]) == 50
    assert round_trips.count == LIBRARY_ROUND_TRIPS[db.dialect], round_trips.statements
    pings = round_trips.statements.count("PING")
    assert len(round_trips.transaction_control) == 3 * pings, round_trips.statements


async def test_a_write_keeps_its_transaction(db: Database, round_trips: RoundTripCounter) -> None:
    [song] = await add_songs(db, 1)
    round_trips.reset()
    async with db.transaction() as session:
        song.title = "Renamed"
        await session.merge(song)
    control = [s.split()[0].upper() for s in round_trips.transaction_control if s != "PING"]
    if db.dialect == "postgresql":
        # Around the pre-ping, then the unit of work's own.
        assert control[:2] == ["BEGIN", "ROLLBACK"]
        control = control[2:]
    assert control[0] == "BEGIN" and control[-1] == "COMMIT", round_trips.statements
