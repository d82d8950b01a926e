"""SIGTERM, as a process manager sends it: `songbook serve` stops taking connections, lets
the requests it holds finish, closes WebSockets with 1001 (going away) and exits 0."""

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed

from tests.live import LiveServer, live_server
from tests.proxy import database_proxy
from tests.ws import eventually, graphql_socket

JOB_UPDATED = "subscription { jobUpdated { id status } }"
CREATE = """mutation($title: String!) { createSong(input: {title: $title, artist: "Adele",
  source: UPLOAD}) { __typename ... on CreateSongSuccess { song { title } } } }"""


@contextlib.asynccontextmanager
async def songs_locked(url: str) -> AsyncIterator[None]:
    """Another client holds the lock a new song needs until the block ends: writes wait."""
    parts = sa.make_url(url)
    if parts.get_backend_name() == "sqlite":
        connection = sqlite3.connect(str(parts.database), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    dsn = parts.set(drivername="postgresql").render_as_string(hide_password=False)
    pg = await asyncpg.connect(dsn)
    try:
        transaction = pg.transaction()
        await transaction.start()
        await pg.execute("LOCK TABLE songs IN EXCLUSIVE MODE")
        yield
        await transaction.rollback()
    finally:
        await pg.close()


async def create_song(server: LiveServer, title: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(
            server.graphql_url, json={"query": CREATE, "variables": {"title": title}}
        )


async def close_code(socket: Any) -> int:
    """The code of the close frame the server sends, reading until it comes."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await socket.receive(within=10)
    assert closed.value.rcvd is not None, "closed without a close frame"
    code: int = closed.value.rcvd.code
    return code


async def test_sigterm_finishes_requests_closes_sockets_and_exits_0(
    empty_url: str, tmp_path: Path
) -> None:
    env = {
        "SONGBOOK_SHUTDOWN_GRACE": "20",
        "SONGBOOK_REQUEST_TIMEOUT": "20",
        "SONGBOOK_SQLITE_BUSY_TIMEOUT_MS": "20000",
    }
    with live_server(empty_url, tmp_path, env) as server:
        # The server's first connection puts SQLite in WAL mode, which it cannot do while
        # another process holds the write lock.
        assert (await create_song(server, "Before")).status_code == 200
        async with graphql_socket(server.ws_url) as ws:
            await ws.subscribe(JOB_UPDATED)
            async with songs_locked(empty_url):
                in_flight = asyncio.create_task(create_song(server, "In flight"))
                await asyncio.sleep(0.5)
                assert not in_flight.done(), "the request should be waiting for the lock"

                started = time.monotonic()
                server.process.send_signal(15)
                assert await close_code(ws) == 1001
                await eventually(server.refuses_connections, within=5)
                assert not in_flight.done()
            # The lock is released: the request in flight completes, and only then the
            # server exits, with status 0.
            response = await in_flight
        exit_status = await asyncio.to_thread(server.process.wait, 15)
        shutdown_seconds = time.monotonic() - started
        print(f"shutdown with a request in flight: {shutdown_seconds:.2f}s")
    assert response.status_code == 200
    assert response.json()["data"]["createSong"] == {
        "__typename": "CreateSongSuccess",
        "song": {"title": "In flight"},
    }
    assert exit_status == 0
    assert "Traceback" not in server.log()


async def test_sigterm_never_waits_past_the_grace_on_a_database_that_stopped_answering(
    empty_url: str, tmp_path: Path, backend_name: str
) -> None:
    """A request stuck on the database is given SONGBOOK_SHUTDOWN_GRACE, then cut; closing
    the pool's connections to the silent database does not hold the exit up either."""
    if backend_name != "postgresql":
        pytest.skip("a database that stops answering is a PostgreSQL server behind a proxy")
    parts = sa.make_url(empty_url)
    with database_proxy(parts.host or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = parts.set(port=proxy.port).render_as_string(hide_password=False)
        env = {"SONGBOOK_SHUTDOWN_GRACE": "2", "SONGBOOK_REQUEST_TIMEOUT": "60"}
        with live_server(proxied, tmp_path, env) as server:
            assert (await create_song(server, "Before")).status_code == 200
            proxy.pause()
            in_flight = asyncio.create_task(create_song(server, "Stuck"))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            exit_status = await asyncio.to_thread(server.stop, 30)
            shutdown_seconds = time.monotonic() - started
            print(f"shutdown with the database paused: {shutdown_seconds:.2f}s")
            # Past the grace the request is stopped, and told why.
            response = await in_flight
            assert response.status_code == 503
            assert response.json()["errors"][0]["extensions"]["code"] == "SHUTTING_DOWN"
            assert exit_status == 0
            # The grace, the pool's goodbyes (at most 2 s) and a margin for slow machines.
            assert shutdown_seconds < 2 + 2 + 3
            assert "Traceback" not in server.log()


def test_sigterm_stops_every_worker_and_the_supervisor_exits_0(
    empty_url: str, tmp_path: Path, backend_name: str
) -> None:
    if backend_name != "postgresql":
        pytest.skip("several server processes share a database only on PostgreSQL")
    with live_server(empty_url, tmp_path, workers=2) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert server.stop(30) == 0
    assert "Traceback" not in server.log()
