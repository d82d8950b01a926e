"""The hand-written ceiling (tests/benchmarks/ceiling.py) answers each benchmark operation
with exactly the bytes Songbook answers, or the benchmark would compare different work."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from persistence.database import Database
from persistence.ids import new_id
from persistence.models import Base, utcnow
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.benchmarks import ceiling


@pytest.fixture
async def seeded(db: Database, migrated_url: str) -> None:
    await seed_library(
        DatabaseSettings(url=migrated_url), songs=60, pending=2, processing=2, random_seed=3
    )
    # The newest song, added by hand: no job yet, no album, no source.
    async with db.transaction() as session:
        songs = Base.metadata.tables["songs"]
        await session.execute(songs.insert().values(id=new_id(), title="Bare", date_added=utcnow()))


@pytest.fixture
async def ceiling_client(migrated_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = ceiling.create_app(migrated_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ceiling.test") as c:
        yield c
    await app.state.engine.dispose()


async def both(
    songbook: httpx.AsyncClient,
    ceiling_client: httpx.AsyncClient,
    route: str,
    document: str,
    variables: dict[str, Any],
) -> bytes:
    """Songbook's body for `document`, after checking the ceiling's route gives the same."""
    expected = await songbook.post("/graphql", json={"query": document, "variables": variables})
    assert expected.status_code == 200, expected.text
    assert "errors" not in expected.json(), expected.text
    actual = await ceiling_client.post(route, json=variables)
    assert actual.status_code == 200, actual.text
    assert actual.content == expected.content
    return expected.content


@pytest.mark.usefixtures("seeded")
async def test_library_pages_are_songbooks_bytes(
    client: httpx.AsyncClient, ceiling_client: httpx.AsyncClient
) -> None:
    body = await both(client, ceiling_client, "/library", ceiling.LIBRARY, {"first": 25})
    data = httpx.Response(200, content=body).json()["data"]["songs"]
    assert data["edges"][0]["node"]["title"] == "Bare"
    assert data["edges"][0]["node"]["latestJob"] is None
    after = data["pageInfo"]["endCursor"]
    # The last page, shorter than asked for: no next page.
    body = await both(
        client, ceiling_client, "/library", ceiling.LIBRARY, {"first": 50, "after": after}
    )
    last = httpx.Response(200, content=body).json()["data"]["songs"]
    assert len(last["edges"]) == 36
    assert last["pageInfo"]["hasNextPage"] is False


@pytest.mark.usefixtures("seeded")
async def test_songs_with_their_jobs_are_songbooks_bytes(
    client: httpx.AsyncClient, ceiling_client: httpx.AsyncClient
) -> None:
    body = await both(
        client, ceiling_client, "/songs-with-jobs", ceiling.SONGS_WITH_JOBS, {"first": 50}
    )
    songs = httpx.Response(200, content=body).json()["data"]["songs"]["edges"]
    assert {len(song["node"]["jobs"]["edges"]) for song in songs} >= {0, 1, 2}


@pytest.mark.usefixtures("seeded")
async def test_searches_are_songbooks_bytes(
    client: httpx.AsyncClient, ceiling_client: httpx.AsyncClient
) -> None:
    for search in ("  river ", "LANTERN", "nothing like it", "100%_"):
        await both(
            client, ceiling_client, "/search", ceiling.SEARCH, {"first": 20, "search": search}
        )


@pytest.mark.usefixtures("seeded")
async def test_node_lookups_are_songbooks_bytes(
    client: httpx.AsyncClient, ceiling_client: httpx.AsyncClient
) -> None:
    body = await both(client, ceiling_client, "/library", ceiling.LIBRARY, {"first": 3})
    songs = httpx.Response(200, content=body).json()["data"]["songs"]["edges"]
    jobs = await both(
        client, ceiling_client, "/songs-with-jobs", ceiling.SONGS_WITH_JOBS, {"first": 3}
    )
    job = httpx.Response(200, content=jobs).json()["data"]["songs"]["edges"][1]["node"]
    ids = [song["node"]["id"] for song in songs] + [
        job["jobs"]["edges"][0]["node"]["id"],
        ceiling.global_id("Song", new_id()),  # no such song: null
    ]
    for id in ids:
        await both(client, ceiling_client, "/node", ceiling.NODE, {"id": id})
