"""A database that stops answering, refuses, closes its doors or vanishes: every request is
answered in time with a stable code, the log gets one line per failure and no traceback,
and service resumes by itself once the database is back.

PostgreSQL sits behind a TCP proxy (tests/proxy.py) that a test pauses, refuses or cuts;
per-database conditions are made on a throwaway database. SQLite has its own analogue: a
write lock another process holds.
"""

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed

from persistence.migrate import upgrade
from tests.auth import issue_token
from tests.conftest import PostgresDatabases, new_database_url
from tests.live import LiveServer, live_server
from tests.proxy import DatabaseProxy, database_proxy
from tests.ws import graphql_socket

GRAPHQL_RESPONSE = "application/graphql-response+json"
COUNT = "{ songs { totalCount } }"
CREATE = """mutation($title: String!) { createSong(input: {title: $title, artist: "Adele",
  source: UPLOAD}) { __typename ... on CreateSongSuccess { song { id } } } }"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
JOB_UPDATED = "subscription { jobUpdated { id status } }"
# Small limits, so that waiting for them keeps the suite fast.
REQUEST_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
LIMITS = {
    "SONGBOOK_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
    "SONGBOOK_DB_STATEMENT_TIMEOUT": "1",
    "SONGBOOK_DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    "SONGBOOK_DB_POOL_TIMEOUT": "1",
    # Few connections: one held forever by a silent database would soon show.
    "SONGBOOK_DB_POOL_SIZE": "2",
    "SONGBOOK_DB_MAX_OVERFLOW": "0",
    # A statement held up by the outage is slow when it ends; its own line is
    # tests/test_logs.py's matter, not these tests' (one line per failed request).
    "SONGBOOK_SLOW_STATEMENT_MS": "60000",
}
# What the server may log about an outage: one line each, never a traceback.
OUTAGE_LINES = re.compile(
    r"Database unavailable: .+"
    r"|A request ran out of time \(\S+\) and was stopped"
    r"|Job events listener lost its connection \(.+\); ended \d+ subscriptions"
    r"|Job events listener is listening again"
)


def dsn(url: str, database: str | None = None) -> str:
    parts = sa.make_url(url).set(drivername="postgresql")
    if database is not None:
        parts = parts.set(database=database)
    return parts.render_as_string(hide_password=False)


async def admin(url: str, *statements: str) -> None:
    """Run statements on the server's maintenance database, beside the one under test."""
    connection = await asyncpg.connect(dsn(url, "postgres"))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors", [])]


async def ask(
    server: LiveServer, query: str = COUNT, accept: str = GRAPHQL_RESPONSE, **variables: Any
) -> Answer:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            server.graphql_url,
            json={"query": query, "variables": variables},
            headers={"accept": accept},
        )
    return Answer(response.status_code, response.json(), time.monotonic() - started)


async def answers_again(server: LiveServer, within: float = 10.0) -> Answer:
    """The first answer with data once the database is back; fails after `within`."""
    deadline = time.monotonic() + within
    while True:
        answer = await ask(server)
        if answer.status == 200 and "errors" not in answer.body:
            return answer
        assert time.monotonic() < deadline, f"service did not resume: {answer}"
        await asyncio.sleep(0.2)


def check_log(log: str, failures: int) -> None:
    """One line per failed request (and the listener's own), nothing else."""
    lines = [line for line in log.splitlines() if line.strip()]
    assert "Traceback" not in log
    assert all(OUTAGE_LINES.fullmatch(line) for line in lines), lines
    per_request = [line for line in lines if not line.startswith("Job events")]
    assert len(per_request) == failures, lines


def refused_as_unavailable(answer: Answer) -> None:
    assert answer.codes == ["DATABASE_UNAVAILABLE"], answer
    assert answer.status == 503, answer
    assert "data" not in answer.body
    assert answer.body["errors"][0]["message"] == "The database is unavailable"


@dataclass
class Outage:
    server: LiveServer
    proxy: DatabaseProxy
    url: str  # the database itself, not through the proxy

    def log_since(self, mark: int) -> str:
        return self.server.log()[mark:]


@pytest.fixture(scope="module")
def outage(
    backend_name: str,
    postgres_databases: PostgresDatabases | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Outage]:
    """One server on a PostgreSQL database reached through a proxy."""
    if backend_name != "postgresql":
        pytest.skip("outages are PostgreSQL behind a proxy; SQLite's are below")
    assert postgres_databases is not None
    url = postgres_databases.create()
    parts = sa.make_url(url)
    with database_proxy(parts.host or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = parts.set(port=proxy.port).render_as_string(hide_password=False)
        with live_server(proxied, tmp_path_factory.mktemp("outage"), LIMITS) as server:
            yield Outage(server, proxy, url)


@pytest.fixture
async def down(outage: Outage) -> AsyncIterator[Outage]:
    """The outage server, answering at first; the proxy forwards again afterwards."""
    await answers_again(outage.server)
    try:
        yield outage
    finally:
        outage.proxy.forward()
        await answers_again(outage.server)


async def test_a_database_that_stops_answering_ends_requests_in_time(down: Outage) -> None:
    server, proxy = down.server, down.proxy
    mark = len(server.log())
    down.proxy.pause()
    # More requests at once than the pool has connections: none waits forever for one.
    answers = await asyncio.gather(
        *(ask(server) for _ in range(4)), ask(server, accept="application/json")
    )
    for answer in answers:
        assert answer.codes in (["TIMEOUT"], ["DATABASE_UNAVAILABLE"]), answer
        # The request timeout, or a connection that never came (past connect timeout).
        assert answer.seconds < REQUEST_TIMEOUT + 1.5, answer
        assert answer.body.get("data") is None
    assert [a.status for a in answers[:4]] == [
        {"TIMEOUT": 504, "DATABASE_UNAVAILABLE": 503}[a.codes[0]] for a in answers[:4]
    ]
    assert answers[4].status == 200  # application/json stays 200, as legacy clients expect
    assert all("data" not in answer.body for answer in answers[:4])
    assert "TIMEOUT" in {a.codes[0] for a in answers}, "the pooled connections hang"
    # Once the pooled connections are given up, new ones do not come either.
    again = await ask(server)
    assert again.codes == ["DATABASE_UNAVAILABLE"] and again.seconds < CONNECT_TIMEOUT + 1.5
    print(f"paused database: answered in {max(a.seconds for a in [*answers, again]):.2f}s")

    proxy.forward()
    resumed = await answers_again(server)
    assert resumed.seconds < 2
    check_log(down.log_since(mark), failures=len(answers) + 1)


async def test_refused_connections_are_answered_at_once_and_service_resumes(
    down: Outage,
) -> None:
    server, proxy = down.server, down.proxy
    created = await ask(server, CREATE, title="Before")
    song_id = created.body["data"]["createSong"]["song"]["id"]
    mark = len(server.log())
    proxy.down()
    answers = [
        await ask(server),
        await ask(server, CREATE, title="During"),
        # Loaded through a dataloader, in a batch of its own.
        await ask(server, NODE, id=song_id),
        await ask(server, accept="application/json"),
    ]
    for answer in answers[:3]:
        refused_as_unavailable(answer)
    assert answers[3].status == 200 and answers[3].codes == ["DATABASE_UNAVAILABLE"]
    slowest = max(a.seconds for a in answers)
    print(f"refusing database: answered within {slowest:.2f}s")
    assert slowest < 5
    body = str([a.body for a in answers])
    assert str(proxy.port) not in body and "127.0.0.1" not in body and "SELECT" not in body

    proxy.forward()
    await answers_again(server)
    assert (await ask(server, NODE, id=song_id)).body == {"data": {"node": {"id": song_id}}}
    check_log(down.log_since(mark), failures=len(answers))


async def test_a_socket_whose_token_cannot_be_checked_is_told_to_try_again(
    down: Outage,
) -> None:
    token = await issue_token(down.url, "reader")  # not yet seen by the server
    down.proxy.down()
    with pytest.raises(ConnectionClosed) as closed:
        async with graphql_socket(down.server.ws_url, init={"Authorization": f"Bearer {token}"}):
            pass
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    down.proxy.forward()
    await answers_again(down.server)
    async with graphql_socket(down.server.ws_url, init={"Authorization": f"Bearer {token}"}):
        pass


async def test_a_database_closed_to_connections_is_unavailable_until_reopened(
    down: Outage,
) -> None:
    server = down.server
    name = sa.make_url(down.url).database
    mark = len(server.log())
    await admin(
        down.url,
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )
    try:
        answers = [await ask(server), await ask(server, CREATE, title="Closed")]
        for answer in answers:
            refused_as_unavailable(answer)
            assert answer.seconds < 5
    finally:
        await admin(down.url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await answers_again(server)
    log = down.log_since(mark)
    check_log(log, failures=len(answers))
    assert "the database is not accepting connections (SQLSTATE 55000)" in log


async def test_a_statement_past_the_statement_timeout_is_cancelled_by_the_database(
    down: Outage,
) -> None:
    """A lock held elsewhere makes the count wait; PostgreSQL itself ends the statement
    after SONGBOOK_DB_STATEMENT_TIMEOUT (1 s), before the request's own timeout (2 s)."""
    server = down.server
    locker = await asyncpg.connect(dsn(down.url))
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE songs IN ACCESS EXCLUSIVE MODE")
            answer = await ask(server)
            waiting = await locker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
    finally:
        await locker.close()
    assert answer.codes == ["TIMEOUT"], answer
    assert answer.status == 504
    assert 1 <= answer.seconds < REQUEST_TIMEOUT, answer
    assert answer.body["errors"][0]["message"] == "The database took too long to answer"
    assert waiting == 0, "the statement still waits on the server"


async def test_subscribers_are_told_when_live_updates_may_have_missed_changes(
    down: Outage,
) -> None:
    """The LISTEN connection is lost: every subscription ends with DATABASE_UNAVAILABLE,
    new ones are refused the same way until it is back, and then they work again."""
    server, proxy = down.server, down.proxy
    async with graphql_socket(server.ws_url) as ws, graphql_socket(server.ws_url) as other:
        first = await ws.subscribe(JOB_UPDATED)
        await other.subscribe("subscription { jobUpdated { progress } }")
        await asyncio.sleep(0.3)
        proxy.down()
        for socket in (ws, other):
            ended = await socket.receive(within=5)
            assert ended["type"] == "next" and ended["id"] == first
            assert ended["payload"]["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            assert (await socket.receive())["type"] == "complete"
        # While nothing is heard, a new subscription would miss changes: it is refused.
        refused = await ws.subscribe(JOB_UPDATED)
        message = await ws.receive(within=5)
        assert message["id"] == refused
        assert message["payload"]["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        assert (await ws.receive())["type"] == "complete"

        proxy.forward()
        await answers_again(server)
        # Subscribe again until the listener is back (it retries within a second or two).
        deadline = time.monotonic() + 10
        while True:
            await ws.subscribe(JOB_UPDATED)
            with contextlib.suppress(TimeoutError):
                message = await ws.receive(within=0.5)
                assert message["payload"]["errors"][0]["extensions"]["code"] == (
                    "DATABASE_UNAVAILABLE"
                )
                assert (await ws.receive())["type"] == "complete"
                assert time.monotonic() < deadline, "live updates never came back"
                continue
            break
        created = await ask(server, CREATE_WITH_JOB, title="After")
        assert created.status == 200, created
        event = await ws.next_result(within=5)
        assert event["data"]["jobUpdated"]["status"] == "PENDING"
    assert "Traceback" not in server.log()


CREATE_WITH_JOB = """mutation($title: String!) { createSongWithJob(input: {title: $title,
  artist: "Adele", source: UPLOAD}) { __typename } }"""


async def test_readiness_follows_the_database(down: Outage) -> None:
    server, proxy = down.server, down.proxy
    async with httpx.AsyncClient(timeout=30) as http:
        ready = await http.get(f"{server.url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        for outage, reasons in [
            (proxy.pause, {"database not answering", "database unreachable"}),
            (proxy.down, {"database unreachable"}),
        ]:
            outage()
            started = time.monotonic()
            answer = await http.get(f"{server.url}/readyz")
            seconds = time.monotonic() - started
            assert answer.status_code == 503
            assert answer.json()["status"] == "unavailable"
            assert answer.json()["reason"] in reasons
            assert seconds < 4.5, seconds
            # Liveness is the process's own: it answers all the same.
            assert (await http.get(f"{server.url}/healthz")).status_code == 200
            proxy.forward()
            await answers_again(server)
        assert (await http.get(f"{server.url}/readyz")).status_code == 200


def test_a_dropped_database_is_unavailable_until_it_is_back(
    backend_name: str, postgres_databases: PostgresDatabases | None, tmp_path: Path
) -> None:
    if backend_name != "postgresql":
        pytest.skip("dropping a database while a server uses it is a PostgreSQL matter")
    assert postgres_databases is not None
    url = postgres_databases.create()
    name = sa.make_url(url).database
    with live_server(url, tmp_path, LIMITS) as server:
        assert asyncio.run(ask(server)).status == 200
        asyncio.run(admin(url, f'DROP DATABASE "{name}" WITH (FORCE)'))
        answers = [asyncio.run(ask(server)) for _ in range(3)]
        for answer in answers:
            refused_as_unavailable(answer)
            assert answer.seconds < 5
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["reason"] == "database unreachable"
        # Made again (and migrated, as `songbook migrate` would): served again.
        asyncio.run(admin(url, f'CREATE DATABASE "{name}"'))
        upgrade(url)
        assert asyncio.run(answers_again(server)).body == {"data": {"songs": {"totalCount": 0}}}
        log = server.log()
    check_log(log, failures=len(answers))
    assert "the database does not exist (SQLSTATE 3D000)" in log


async def test_a_request_timeout_cancels_the_statement_on_the_server(
    backend_name: str, postgres_databases: PostgresDatabases | None, tmp_path: Path
) -> None:
    """Without a statement timeout, the request's own ends the statement: its task is
    cancelled, and asyncpg asks PostgreSQL to cancel what it runs."""
    if backend_name != "postgresql":
        pytest.skip("SQLite runs inside the server process")
    assert postgres_databases is not None
    url = await asyncio.to_thread(postgres_databases.create)
    env = {**LIMITS, "SONGBOOK_REQUEST_TIMEOUT": "1", "SONGBOOK_DB_STATEMENT_TIMEOUT": "0"}
    with live_server(url, tmp_path, env) as server:
        locker = await asyncpg.connect(dsn(url))
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE songs IN ACCESS EXCLUSIVE MODE")
                answer = await ask(server)
                await asyncio.sleep(0.5)
                waiting = await locker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
        finally:
            await locker.close()
        assert (answer.status, answer.codes) == (504, ["TIMEOUT"]), answer
        assert answer.body == {
            "errors": [
                {
                    "message": "The request took too long and was stopped",
                    "extensions": {"code": "TIMEOUT"},
                }
            ]
        }
        assert 1 <= answer.seconds < 2.5
        assert waiting == 0, "the cancelled statement still runs on the server"
        assert (await answers_again(server)).seconds < 1
        check_log(server.log(), failures=1)


async def test_sqlite_requests_end_in_time_while_another_process_holds_the_lock(
    backend_name: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases | None,
    tmp_path: Path,
) -> None:
    if backend_name != "sqlite":
        pytest.skip("SQLite's write lock")
    url = new_database_url("sqlite", tmp_path_factory, postgres_databases)
    env = {
        "SONGBOOK_REQUEST_TIMEOUT": "1",
        "SONGBOOK_SQLITE_BUSY_TIMEOUT_MS": "30000",
        "SONGBOOK_SLOW_STATEMENT_MS": LIMITS["SONGBOOK_SLOW_STATEMENT_MS"],
    }
    with live_server(url, tmp_path, env) as server:
        # The server's first connection puts the file in WAL mode, which needs the lock.
        assert (await ask(server, CREATE, title="First")).status == 200
        holder = sqlite3.connect(str(sa.make_url(url).database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            blocked = await ask(server, CREATE, title="Blocked")
            # Reading needs no lock in WAL mode.
            reading = await ask(server)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (blocked.status, blocked.codes) == (504, ["TIMEOUT"]), blocked
        assert blocked.seconds < 2
        assert reading.body == {"data": {"songs": {"totalCount": 1}}}
        # The stopped write let go of the server's write queue and its connection.
        after = await ask(server, CREATE, title="After")
        assert after.body["data"]["createSong"]["__typename"] == "CreateSongSuccess"
        assert (await ask(server)).body == {"data": {"songs": {"totalCount": 2}}}
        check_log(server.log(), failures=1)
