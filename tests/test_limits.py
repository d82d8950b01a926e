"""The limits that keep one client from taking the server from the others, met as a client
meets them: against real `songbook serve` processes, on each backend.

One server per backend serves most tests (with a low subscription limit, so the
WebSocket rule is reached quickly); the production settings get servers of their own.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.live import LiveServer, live_server
from tests.ws import LEGACY_WS, TRANSPORT_WS, graphql_socket

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
WS_MAX_SUBSCRIPTIONS = 3
SIMPLE = "{ songs(first: 1) { totalCount edges { node { id } } } }"
JOB_UPDATED = "subscription { jobUpdated { id status } }"


def fan_out(fragments: int, type_name: str, leaf: str) -> str:
    """Fragments each spreading the one before twice: 2^(n-1) copies of `leaf` once
    expanded, in a document of a few kilobytes."""
    definitions = [f"fragment F0 on {type_name} {{ {leaf} }}"] + [
        f"fragment F{n} on {type_name} {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, fragments)
    ]
    return "\n".join(definitions)


# 40 fragments, 2^39 `__typename`s once expanded: what held the CPU for minutes.
FAN_OUT = "{ ...F39 }\n" + fan_out(40, "Query", "__typename")
FAN_OUT_NODES = 2**39
# 50,000 aliases in a document of under 2 KB: 5 in the innermost fragment, spread 10^4 times.
ALIAS_FAN_OUT = (
    "{ ...A4 }\nfragment A0 on Query { "
    + " ".join(f"a{n}: __typename" for n in range(5))
    + " }\n"
    + "\n".join(
        f"fragment A{n} on Query {{ {' '.join([f'...A{n - 1}'] * 10)} }}" for n in range(1, 5)
    )
)
# The same number of aliases written out: too large to parse at all.
FLAT_ALIASES = "{ " + " ".join(f"a{n}: __typename" for n in range(50_000)) + " }"


@pytest.fixture(scope="module")
def database_url(module_url: str) -> str:
    return module_url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "SONGBOOK_ENV": "development",
        "SONGBOOK_WS_MAX_SUBSCRIPTIONS": str(WS_MAX_SUBSCRIPTIONS),
    }
    with live_server(database_url, tmp_path_factory.mktemp("logs"), env) as live:
        yield live
        assert "Traceback" not in live.log(), live.log()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    accept: str = JSON,
) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"accept": accept}
    )


def refusal(body: dict[str, Any], limit: str) -> dict[str, Any]:
    """The QUERY_TOO_COMPLEX error naming `limit`."""
    (error,) = [e for e in body["errors"] if e["extensions"].get("limit") == limit]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert limit in error["message"]
    extensions: dict[str, Any] = error["extensions"]
    return extensions


# --- Shape: depth, aliases, nodes --------------------------------------------------------

DEPTH_12 = "{ songs(first: 1) { edges { node { jobs(first: 1) { edges { node { song { jobs(first: 1) { edges { node { song { id } } } } } } } } } } } }"
DEPTH_13 = DEPTH_12.replace("song { id }", "song { latestJob { id } }")
JOB_FIELDS = "id status progress message createdAt updatedAt claimedBy leaseExpiresAt"
# 100 songs with 100 jobs each: 300 + 100 * 100 * (3 + 8) nodes.
NODES = f"query($jobs: Int) {{ songs(first: 100) {{ edges {{ node {{ jobs(first: $jobs) {{ edges {{ node {{ {JOB_FIELDS} }} }} }} }} }} }} }}"


def default_pages(songs_pages: int) -> str:
    """Pages of 100 songs, each with its default page of jobs: 300 + 100 * 20 * 11 nodes
    a page."""
    pages = " ".join(
        f"s{n}: songs(first: 100) {{ edges {{ node {{ jobs {{ edges {{ node {{ {JOB_FIELDS} }} }} }} }} }} }}"
        for n in range(songs_pages)
    )
    return f"{{ {pages} }}"


@pytest.mark.parametrize(
    ("query", "variables", "limit", "measured", "allowed"),
    [
        (DEPTH_13, {}, "depth", 13, 12),
        ("{ " + " ".join(f"a{n}: __typename" for n in range(31)) + " }", {}, "aliases", 31, 30),
        (ALIAS_FAN_OUT, {}, "aliases", 50_000, 30),
        (NODES, {"jobs": 100}, "nodes", 300 + 100 * 100 * 11, 100_000),
        # No `first` on jobs: the default page, 20 jobs for each of 100 songs, five times.
        (default_pages(5), {}, "nodes", 5 * (300 + 100 * 20 * 11), 100_000),
        (FAN_OUT, {}, "nodes", FAN_OUT_NODES, 100_000),
        (
            "{ songs { edges { node { ...F39 } } } }\n" + fan_out(40, "Song", "title"),
            {},
            "nodes",
            60 + 20 * FAN_OUT_NODES,
            100_000,
        ),
    ],
    ids=[
        "depth",
        "aliases",
        "aliases-in-fragments",
        "nodes",
        "nodes-default-page",
        "fan-out",
        "fan-out-in-a-page",
    ],
)
async def test_each_shape_limit_is_refused_with_its_numbers(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    limit: str,
    measured: int,
    allowed: int,
) -> None:
    legacy = await post(http, query, variables)
    assert legacy.status_code == 200
    body = legacy.json()
    assert body["data"] is None
    extensions = refusal(body, limit)
    assert (extensions["measured"], extensions["allowed"]) == (measured, allowed)

    spec = await post(http, query, variables, GRAPHQL_RESPONSE)
    assert spec.status_code == 400
    assert "data" not in spec.json()
    assert refusal(spec.json(), limit) == extensions


async def test_operations_at_the_limits_run(http: httpx.AsyncClient) -> None:
    at_limits = [
        (DEPTH_12, {}),
        ("{ " + " ".join(f"a{n}: __typename" for n in range(30)) + " }", {}),
        # 300 + 100 * 90 * 11 = 99,300 nodes.
        (NODES, {"jobs": 90}),
        # 4 * 22,300 nodes.
        (default_pages(4), {}),
    ]
    for query, variables in at_limits:
        body = (await post(http, query, variables)).json()
        assert "errors" not in body, body
        assert body["data"]


async def test_fragment_cycles_and_unknown_fragments_are_left_to_validation(
    http: httpx.AsyncClient,
) -> None:
    cycle = "{ songs { edges { node { ...A } } } } fragment A on Song { title ...B } fragment B on Song { latestJob { song { ...A } } }"
    unknown = "{ songs { edges { node { ...Nowhere } } } }"
    for query in (cycle, unknown):
        response = await post(http, query, accept=GRAPHQL_RESPONSE)
        assert response.status_code == 400
        (error, *_) = response.json()["errors"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


# --- Size: tokens and bytes --------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "{ " + "a " * 200_000 + "}",
        # Comments are tokens too, though the parser skips them.
        "{ a\n" + "#\n" * 200_000 + "}",
        FLAT_ALIASES,
    ],
    ids=["fields", "comments", "aliases"],
)
async def test_a_document_over_the_token_limit_is_refused_as_it_is_read(
    http: httpx.AsyncClient, query: str
) -> None:
    for accept, status in [(JSON, 200), (GRAPHQL_RESPONSE, 400)]:
        started = time.perf_counter()
        response = await post(http, query, accept=accept)
        elapsed = time.perf_counter() - started
        assert response.status_code == status
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_LARGE", "allowed": 15_000}
        assert "15000 tokens" in error["message"]
        assert "data" not in response.json() or accept == JSON
        # Parsing stops at the limit: nothing like the time 200,000 tokens would take.
        assert elapsed < 2, elapsed


def peak_memory_bytes(pid: int) -> int:
    """The process's peak resident memory (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
async def test_a_body_over_the_limit_is_413_and_never_held_whole(
    http: httpx.AsyncClient, server: LiveServer
) -> None:
    twenty_mb = b'{"query": "{ __typename }", "padding": "' + b"x" * 20_000_000 + b'"}'

    def whole() -> bytes:
        return twenty_mb

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(twenty_mb), 1_000_000):
            yield twenty_mb[start : start + 1_000_000]

    await post(http, SIMPLE)
    peak_before = peak_memory_bytes(server.process.pid)
    # With Content-Length, and chunked (no length announced: counted as it streams).
    for body in (whole, chunked):
        for accept in (JSON, GRAPHQL_RESPONSE):
            response = await http.post(
                "/graphql", content=body(), headers={"content-type": JSON, "accept": accept}
            )
            assert response.status_code == 413
            assert response.headers["content-type"].startswith(accept)
            assert response.json()["errors"] == [
                {
                    "message": "The request body is larger than 2097152 bytes, the limit",
                    "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                }
            ]
    # Four 20 MB bodies later the server has grown by far less than one of them.
    assert peak_memory_bytes(server.process.pid) - peak_before < 10_000_000
    assert (await post(http, SIMPLE)).json()["data"]["songs"]["totalCount"] == 0


# --- One client cannot hold the others up ------------------------------------------------


async def test_costly_documents_are_refused_fast_while_other_clients_are_served(
    http: httpx.AsyncClient, server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as other:

        async def simple_query() -> float:
            started = time.perf_counter()
            response = await post(other, SIMPLE)
            assert response.json()["data"]["songs"]["totalCount"] == 0
            return time.perf_counter() - started

        baseline = max([await simple_query() for _ in range(20)])

        latencies: list[float] = []
        attacking = True

        async def other_client() -> None:
            while attacking:
                latencies.append(await simple_query())

        loop = asyncio.create_task(other_client())
        refusals: dict[str, list[float]] = {"fan-out": [], "aliases": []}
        # Until the other client has been answered often enough to tell.
        while len(refusals["fan-out"]) < 5 or len(latencies) < 20:
            for name, query in (("fan-out", FAN_OUT), ("aliases", ALIAS_FAN_OUT)):
                started = time.perf_counter()
                response = await post(http, query)
                refusals[name].append(time.perf_counter() - started)
                assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        attacking = False
        await loop

    worst = {name: f"{max(times):.3f}s" for name, times in refusals.items()}
    print(f"refused in at most {worst}; other client {baseline:.3f}s -> {max(latencies):.3f}s")
    assert all(elapsed < 1 for times in refusals.values() for elapsed in times), refusals
    assert max(latencies) < baseline + 0.3, (baseline, latencies)


# --- Production: no introspection, no suggestions ----------------------------------------

SUGGESTING: list[tuple[str, dict[str, Any]]] = [
    # A misspelt field, argument value and enum value (literal and in a variable), and a
    # field of an object type asked for without its fields.
    ('{ song(id: "U29uZzox") { titl } }', {}),
    ("{ songs(source: YOUTUB) { totalCount } }", {}),
    ("query($s: SongSource) { songs(source: $s) { totalCount } }", {"s": "YOUTUB"}),
    ("query($o: SongOrder) { songs(orderBy: $o) { totalCount } }", {"o": {"feld": "TITLE"}}),
    ("{ songs }", {}),
]
INTROSPECTION = "{ __schema { queryType { name } } }"


async def suggestions(http: httpx.AsyncClient) -> list[str]:
    """The errors that suggest something, of SUGGESTING's operations."""
    found = []
    for query, variables in SUGGESTING:
        body = (await post(http, query, variables)).json()
        assert body["errors"], query
        found += [e["message"] for e in body["errors"] if "Did you mean" in e["message"]]
    return found


async def test_development_answers_introspection_and_suggests(http: httpx.AsyncClient) -> None:
    body = (await post(http, INTROSPECTION)).json()
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    assert len(await suggestions(http)) == len(SUGGESTING)


async def test_production_hides_the_schema_unless_introspection_is_on(
    database_url: str, tmp_path: Path
) -> None:
    production = {"SONGBOOK_ENV": "production", "SONGBOOK_INTROSPECTION": ""}
    with (
        live_server(database_url, tmp_path, production) as closed,
        live_server(
            database_url, tmp_path, {**production, "SONGBOOK_INTROSPECTION": "on"}
        ) as open_,
    ):
        async with httpx.AsyncClient(base_url=closed.url) as http:
            response = await post(http, INTROSPECTION, accept=GRAPHQL_RESPONSE)
            assert response.status_code == 400
            error = response.json()["errors"][0]
            assert "introspection has been disabled" in error["message"]
            assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            typename = await post(http, '{ __typename __type(name: "Song") { name } }')
            assert "__type" in typename.json()["errors"][0]["message"]
            assert (await post(http, "{ __typename }")).json() == {"data": {"__typename": "Query"}}
            assert await suggestions(http) == []

        async with httpx.AsyncClient(base_url=open_.url) as http:
            body = (await post(http, INTROSPECTION)).json()
            assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
            assert await suggestions(http) == []


# --- WebSocket ---------------------------------------------------------------------------


async def closed_with(connection: ClientConnection, within: float = 10) -> int | None:
    """The close code the server sends, reading (and dropping) messages until it does."""
    try:
        while True:
            await asyncio.wait_for(connection.recv(), within)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def acknowledged(url: str) -> ClientConnection:
    connection = await connect(url, subprotocols=[Subprotocol(TRANSPORT_WS)])
    await connection.send(orjson.dumps({"type": "connection_init"}).decode())
    assert orjson.loads(await connection.recv())["type"] == "connection_ack"
    return connection


MALFORMED: list[str | bytes] = [
    "[1,2]",
    '"x"',
    "5",
    "null",
    '{"type": 5}',
    "{}",
    "{not json",
    b"\x00\x01binary",
    '{"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}}',
    '{"type": "subscribe", "id": "1", "payload": "{ __typename }"}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 5}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", "variables": [1]}}',
    '{"type": "complete", "id": [1]}',
]


async def test_websocket_rules(server: LiveServer) -> None:
    # Silent from the start: closed with 4408 once the 10 s for connection_init are up,
    # while the rest of the test runs.
    silent = await connect(server.ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)])
    silent_legacy = await connect(server.ws_url, subprotocols=[Subprotocol(LEGACY_WS)])
    opened = time.monotonic()

    # Each malformed frame closes its connection with 4400, and harms no other.
    for frame in MALFORMED:
        connection = await acknowledged(server.ws_url)
        await connection.send(frame)
        assert await closed_with(connection) == 4400, frame

    # A message larger than a request body may be: 1009.
    connection = await acknowledged(server.ws_url)
    query = "{ __typename }" + " " * 2_100_000
    await connection.send(
        orjson.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}).decode()
    )
    assert await closed_with(connection) == 1009

    # The shape limits hold on WebSocket too.
    async with graphql_socket(server.ws_url) as socket:
        await socket.subscribe(
            f"subscription {{ jobUpdated {{ ...F39 }} }}\n{fan_out(40, 'Job', 'id')}"
        )
        message = await socket.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"

    # At most WS_MAX_SUBSCRIPTIONS at once, on either protocol.
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        async with graphql_socket(server.ws_url, protocol) as socket:
            ids = [await socket.subscribe(JOB_UPDATED) for _ in range(WS_MAX_SUBSCRIPTIONS)]
            await socket.expect_silence(0.3)
            extra = await socket.subscribe(JOB_UPDATED)
            message = await socket.receive()
            assert (message["type"], message["id"]) == ("error", extra)
            errors = message["payload"] if protocol == TRANSPORT_WS else [message["payload"]]
            assert errors[0]["extensions"] == {
                "code": "TOO_MANY_SUBSCRIPTIONS",
                "allowed": WS_MAX_SUBSCRIPTIONS,
            }
            # Ending one makes room for another.
            if protocol == TRANSPORT_WS:
                await socket.send({"id": ids[0], "type": "complete"})
                await asyncio.sleep(0.2)
            else:
                await socket.send({"id": ids[0], "type": "stop"})
                assert await socket.receive() == {"type": "complete", "id": ids[0]}
            await socket.subscribe(JOB_UPDATED)
            await socket.expect_silence(0.3)

    assert await closed_with(silent, within=15) == 4408
    assert await closed_with(silent_legacy, within=5) == 4408
    assert 9 < time.monotonic() - opened < 14
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200
