"""Batching: a page of songs with their jobs costs the same few statements at any size."""

import asyncio

import pytest

from persistence.database import Database
from tests.conftest import GraphQLClient, StatementCounter
from tests.factories import add_songs, global_id

LIBRARY_PAGE = """
query($first: Int!) {
  songs(first: $first) {
    edges { node {
      title
      latestJob { status }
      jobs(first: 5) { edges { node { id } } }
    } }
  }
}"""


@pytest.mark.parametrize("size", [5, 50])
async def test_library_page_runs_at_most_four_statements(
    size: int, gql: GraphQLClient, db: Database, statements: StatementCounter
) -> None:
    await add_songs(db, size, jobs_per_song=3)
    statements.reset()
    data = await gql.data(LIBRARY_PAGE, first=size)
    edges = data["songs"]["edges"]
    assert len(edges) == size
    assert all(edge["node"]["latestJob"]["status"] == "COMPLETED" for edge in edges)
    assert all(len(edge["node"]["jobs"]["edges"]) == 3 for edge in edges)
    assert statements.count <= 4, statements.statements
    # The same statements whatever the page size: one page, one latest-job batch, one jobs batch.
    assert statements.count == 3


@pytest.mark.parametrize("size", [5, 50])
async def test_each_songs_job_count_is_batched(
    size: int, gql: GraphQLClient, db: Database, statements: StatementCounter
) -> None:
    await add_songs(db, size, jobs_per_song=2)
    statements.reset()
    data = await gql.data(
        "query($first: Int!) { songs(first: $first) { edges { node { jobs(first: 1) { totalCount } } } } }",
        first=size,
    )
    assert [edge["node"]["jobs"]["totalCount"] for edge in data["songs"]["edges"]] == [2] * size
    # One page, one batch of job slices, one batch of counts.
    assert statements.count == 3, statements.statements


async def test_total_count_is_only_counted_when_asked(
    gql: GraphQLClient, db: Database, statements: StatementCounter
) -> None:
    await add_songs(db, 3)
    statements.reset()
    await gql.data("{ songs { edges { node { id } } } }")
    assert not any("count(" in s.lower() for s in statements.statements)
    statements.reset()
    assert (await gql.data("{ songs { totalCount } }"))["songs"]["totalCount"] == 3
    assert any("count(" in s.lower() for s in statements.statements)


async def test_loaders_firing_in_the_same_tick_use_separate_sessions(
    gql: GraphQLClient, db: Database
) -> None:
    """Sibling fields resolve concurrently; each loader's batch has a session of its own,
    so PostgreSQL's one-operation-per-connection rule is never broken."""
    songs = await add_songs(db, 4, jobs_per_song=2)
    ids = [global_id("Song", song.id) for song in songs]
    query = """query($a: ID!, $b: ID!, $c: ID!) {
      a: song(id: $a) { latestJob { song { title } } jobs { edges { node { song { title } } } } }
      b: song(id: $b) { latestJob { status } jobs(first: 1) { totalCount } }
      c: node(id: $c) { ... on Song { latestJob { progress } } }
      jobs(first: 3) { totalCount edges { node { song { latestJob { status } } } } }
      songs(first: 4) { totalCount edges { node { jobs { totalCount } } } }
    }"""
    requests = asyncio.gather(*(gql(query, a=ids[0], b=ids[1], c=ids[2]) for _ in range(5)))
    # A shared session deadlocks or errors here; the timeout turns a hang into a failure.
    results = await asyncio.wait_for(requests, timeout=60)
    for body in results:
        assert "errors" not in body, body["errors"]
        assert body["data"]["a"]["latestJob"]["song"]["title"] == "Song 000"
        assert body["data"]["b"]["jobs"]["totalCount"] == 2
        assert body["data"]["songs"]["totalCount"] == 4
