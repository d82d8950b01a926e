"""Read replicas, against a real streaming replica (tests/replication.py): queries read
from it, mutations write to the primary and hand back a position to read after, a
lagging or stopped replica is skipped without a request lost."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistence.migrate import downgrade, upgrade
from tests import js
from tests.live import ROOT, LiveServer, live_server
from tests.replication import Cluster, server_binaries, streaming_cluster
from tests.test_metrics import parse, total

CREATE = """
mutation Create($title: String!) {
  createSong(input: {title: $title, artist: "Replica", source: UPLOAD}) {
    __typename ... on CreateSongSuccess { song { id } }
  }
}"""
# Answered by the compiled read path.
FIND = "query Find($q: String!) { songs(search: $q) { totalCount } }"
# Handed to Strawberry's executor (introspection of a type's name is not compiled).
FIND_BY_STRAWBERRY = """
query FindByStrawberry($q: String!) { __schema { queryType { name } } songs(search: $q) { totalCount } }
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = server_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are missing")
    with streaming_cluster(bindir) as made:
        yield made


def replicated(cluster: Cluster, tmp_path: Path, **env: str) -> Any:
    return live_server(
        cluster.primary_url,
        tmp_path,
        {"DATABASE_READ_URLS": cluster.replica_url, **env},
    )


async def create(http: httpx.AsyncClient, title: str) -> str:
    response = await http.post("/graphql", json={"query": CREATE, "variables": {"title": title}})
    body = response.json()
    assert body["data"]["createSong"]["__typename"] == "CreateSongSuccess", body
    token = body["extensions"]["readAfter"]
    assert isinstance(token, str)
    return token


async def count(
    http: httpx.AsyncClient, title: str, read_after: str | None = None, query: str = FIND
) -> int:
    headers = {} if read_after is None else {"Songbook-Read-After": read_after}
    response = await http.post(
        "/graphql", json={"query": query, "variables": {"q": title}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    found: int = body["data"]["songs"]["totalCount"]
    return found


async def replica_statements(http: httpx.AsyncClient) -> float:
    response = await http.get("/metrics")
    return total(parse(response.text), "songbook_db_statement_duration_seconds_count",
                 role="replica")  # fmt: skip


async def replica_status(http: httpx.AsyncClient) -> str:
    body = (await http.get("/readyz")).json()
    assert body["status"] == "ready", body
    status: str = body["replicas"][0]["status"]
    return status


async def eventually(check: Any) -> None:
    """Wait (up to 15 s) until `check()` answers true."""
    for _ in range(150):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within 15 s")


@pytest.fixture
async def paused(cluster: Cluster) -> AsyncIterator[None]:
    await cluster.pause_replay()
    try:
        yield
    finally:
        await cluster.resume_replay()


def http_to(server: LiveServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30)


@pytest.mark.parametrize("query", [FIND, FIND_BY_STRAWBERRY], ids=["compiled", "strawberry"])
async def test_queries_read_the_replica_and_a_token_reads_your_writes(
    cluster: Cluster, tmp_path: Path, query: str
) -> None:
    with replicated(cluster, tmp_path, SONGBOOK_REPLICA_MAX_LAG_S="60") as server:
        async with http_to(server) as http:
            assert await replica_status(http) == "ok"
            title = f"Replica {uuid.uuid4().hex}"
            await cluster.pause_replay()
            try:
                token = await create(http, title)
                # The replica has not replayed the write: a query that reads it misses it...
                assert await count(http, title, query=query) == 0
                # ...and one that sends the mutation's token reads it from the primary.
                assert await count(http, title, read_after=token, query=query) == 1
            finally:
                await cluster.resume_replay()
            # Caught up, the replica answers the token itself.
            await eventually(lambda: _found(http, title, query))
            before = await replica_statements(http)
            assert await count(http, title, read_after=token, query=query) == 1
            assert await replica_statements(http) > before


async def _found(http: httpx.AsyncClient, title: str, query: str) -> bool:
    return await count(http, title, query=query) == 1


async def test_a_lagging_replica_is_skipped_until_it_catches_up(
    cluster: Cluster, tmp_path: Path, paused: None
) -> None:
    with replicated(cluster, tmp_path, SONGBOOK_REPLICA_MAX_LAG_S="1") as server:
        async with http_to(server) as http:
            title = f"Lagging {uuid.uuid4().hex}"
            await create(http, title)
            # Past a second behind, queries read from the primary, and see the song.
            await eventually(lambda: _found(http, title, FIND))
            assert await replica_status(http) == "lagging"
            await cluster.resume_replay()
            await eventually(lambda: _is(http, "ok"))
    assert "Replica 1 is skipped (lagging" in server.log()


async def _is(http: httpx.AsyncClient, status: str) -> bool:
    return await replica_status(http) == status


async def test_stopping_the_replica_loses_no_request(cluster: Cluster, tmp_path: Path) -> None:
    with replicated(cluster, tmp_path) as server:
        async with http_to(server) as http:
            title = f"Stopped {uuid.uuid4().hex}"
            token = await create(http, title)
            await eventually(lambda: _found(http, title, FIND))
            stopped = asyncio.Event()
            answered = 0

            async def keep_asking() -> None:
                nonlocal answered
                rounds_after_stop = 0
                while rounds_after_stop < 20:
                    for query in (FIND, FIND_BY_STRAWBERRY):
                        assert await count(http, title, query=query) == 1
                        answered += 1
                    if stopped.is_set():
                        rounds_after_stop += 1

            askers = [asyncio.create_task(keep_asking()) for _ in range(4)]
            await asyncio.sleep(0.5)
            try:
                await asyncio.to_thread(cluster.stop_replica)
                stopped.set()
                await asyncio.gather(*askers)
                assert await replica_status(http) == "down"
                # Mutations never needed it; reads after them fall back to the primary.
                assert await count(http, title, read_after=await create(http, title)) == 2
            finally:
                for asker in askers:
                    asker.cancel()
                await asyncio.to_thread(cluster.start_replica)
            await eventually(lambda: _is(http, "ok"))
            before = await replica_statements(http)
            assert await count(http, title, read_after=token) == 2
            assert await replica_statements(http) > before
            assert answered > 80
    assert "Replica 1 is skipped (down" in server.log()


README_LINK = re.compile(r"^```js\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_link(folder: Path) -> Path:
    """The README's Apollo link, saved as a module beside tests/clients' packages."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (snippet,) = [b for b in README_LINK.findall(readme) if "Songbook-Read-After" in b]
    path = folder / "read-your-writes.mjs"
    path.write_text(snippet, encoding="utf-8")
    (folder / "node_modules").symlink_to(js.CLIENTS / "node_modules", target_is_directory=True)
    return path


async def test_apollo_client_reads_its_writes_through_the_readme_link(
    cluster: Cluster, tmp_path: Path, paused: None
) -> None:
    js.install()
    link = readme_link(tmp_path)
    title = f"Apollo {uuid.uuid4().hex}"
    with replicated(cluster, tmp_path, SONGBOOK_REPLICA_MAX_LAG_S="60") as server:
        result = await asyncio.to_thread(
            js.run, "read_your_writes.mjs", server.graphql_url, str(link), title
        )
    assert result["created"] == "CreateSongSuccess"
    # Replay is paused: without the token the replica answers, and has not seen the song.
    assert result["withoutLink"] == 0
    assert result["withLink"] == 1
    assert [(s["operationName"], s["readAfter"] is not None) for s in result["sent"]] == [
        ("Create", False),
        ("Find", False),
        ("Find", True),
    ]


async def test_a_mutation_hands_back_its_write_position(
    client: httpx.AsyncClient, backend_name: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": CREATE, "variables": {"title": "Position"}}
    )
    extensions = response.json().get("extensions", {})
    if backend_name == "sqlite":
        assert "readAfter" not in extensions  # no replicas, so no position to wait for
        return
    token = extensions["readAfter"]
    assert re.fullmatch(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}", token)
    # Without replicas every read is the primary's: the token is taken and already met.
    assert await count(client, "Position", read_after=token) >= 1


@pytest.mark.parametrize("header", ["yesterday", "0/", "1/2/3", "G/1", "0/123456789"])
async def test_a_read_after_that_is_not_a_position_is_refused(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"title": "Never"}},
        headers={"Songbook-Read-After": header, "Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "Songbook-Read-After must be a token from a mutation's "
                "extensions.readAfter",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    assert await count(client, "Never") == 0


async def test_a_replica_behind_the_newest_migration_is_skipped(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A migration the replica has not replayed yet (replay paused here) would fail its
    queries: it is skipped whatever its lag, until it has replayed the migration."""
    url = cluster.primary_url
    await asyncio.to_thread(downgrade, url, "-1")
    await cluster.caught_up()
    await cluster.pause_replay()
    try:
        await asyncio.to_thread(upgrade, url)
        with replicated(cluster, tmp_path, SONGBOOK_REPLICA_MAX_LAG_S="60") as server:
            async with http_to(server) as http:
                assert await replica_status(http) == "lagging"
                title = f"Migrated {uuid.uuid4().hex}"
                # Read from the primary: the replica does not have the song yet either.
                await create(http, title)
                assert await count(http, title) == 1
                await cluster.resume_replay()
                await eventually(lambda: _is(http, "ok"))
        assert "its schema is not at the newest migration" in server.log()
    finally:
        await cluster.resume_replay()
