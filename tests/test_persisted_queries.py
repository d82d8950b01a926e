"""Automatic persisted queries and trusted documents, as Apollo Client and urql use them."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.models import PersistedQuery
from tests.factories import add_songs
from tests.live import live_server
from tests.test_migrations import differences
from tests.ws import LEGACY_WS, TRANSPORT_WS, GraphQLSocket, graphql_socket

QUERY = "query Count { songs { totalCount } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(sha: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.fixture
async def make_client(db: Database) -> AsyncIterator[MakeClient]:
    """Clients of separate app instances over one database, like separate processes."""
    clients: list[httpx.AsyncClient] = []

    async def make(**settings: Any) -> httpx.AsyncClient:
        app = create_app(Settings(database=db.settings, **settings), db=db)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://songbook.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def stored(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = (await session.execute(sa.select(PersistedQuery))).scalars().all()
    return {row.sha256: row.document for row in rows}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_apq_round_trip_by_post_then_get(
    make_client: MakeClient, db: Database, accept: str
) -> None:
    await add_songs(db, 2)
    client = await make_client()
    sha = sha256(QUERY)

    # 1. The hash alone: unknown, answered in the form clients retry on, never cached.
    miss = await client.post(
        "/graphql", json={"extensions": persisted(sha)}, headers={"accept": accept}
    )
    assert miss.status_code == 200
    assert miss.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert miss.headers["cache-control"] == "private, no-cache, must-revalidate"

    # 2. The retry with query and hash runs and registers the document.
    register = await client.post(
        "/graphql", json={"query": QUERY, "extensions": persisted(sha)}, headers={"accept": accept}
    )
    assert register.json() == {"data": {"songs": {"totalCount": 2}}}
    assert await stored(db) == {sha: QUERY}

    # 3. From then on the hash alone runs it, by POST and by GET.
    by_post = await client.post(
        "/graphql", json={"extensions": persisted(sha)}, headers={"accept": accept}
    )
    assert by_post.json() == {"data": {"songs": {"totalCount": 2}}}
    by_get = await client.get(
        "/graphql",
        params={"operationName": "Count", "extensions": json.dumps(persisted(sha))},
        headers={"accept": accept},
    )
    assert by_get.status_code == 200
    assert by_get.json() == {"data": {"songs": {"totalCount": 2}}}


async def test_the_store_is_shared_by_every_process(make_client: MakeClient) -> None:
    first, second = await make_client(), await make_client()
    sha = sha256(QUERY)
    await first.post("/graphql", json={"query": QUERY, "extensions": persisted(sha)})
    answer = await second.post("/graphql", json={"extensions": persisted(sha)})
    assert answer.json() == {"data": {"songs": {"totalCount": 0}}}


async def test_a_wrong_hash_is_refused_and_nothing_is_stored(
    make_client: MakeClient, db: Database
) -> None:
    client = await make_client()
    wrong = sha256("query Other { songs { totalCount } }")
    for accept, status in ((GRAPHQL_RESPONSE, 400), ("application/json", 200)):
        response = await client.post(
            "/graphql",
            json={"query": QUERY, "extensions": persisted(wrong)},
            headers={"accept": accept},
        )
        assert response.status_code == status
        assert codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    malformed = await client.post(
        "/graphql", json={"query": QUERY, "extensions": persisted("not-a-hash")}
    )
    assert codes(malformed.json()) == ["BAD_REQUEST"]
    assert await stored(db) == {}
    # The store is still asked for the wrong hash alone, and does not have it.
    miss = await client.post("/graphql", json={"extensions": persisted(wrong)})
    assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_invalid_documents_are_not_stored(make_client: MakeClient, db: Database) -> None:
    client = await make_client()
    for document in ("{ noSuchField }", "{ songs { "):
        response = await client.post(
            "/graphql", json={"query": document, "extensions": persisted(sha256(document))}
        )
        assert response.json()["errors"]
    assert await stored(db) == {}


async def test_the_store_keeps_the_most_recently_used(
    make_client: MakeClient, db: Database
) -> None:
    client = await make_client(apq_max_documents=2)
    documents = [f"query Q{n} {{ songs {{ totalCount }} }}" for n in range(3)]
    for document in documents:
        response = await client.post(
            "/graphql", json={"query": document, "extensions": persisted(sha256(document))}
        )
        assert response.json() == {"data": {"songs": {"totalCount": 0}}}
    assert set(await stored(db)) == {sha256(documents[1]), sha256(documents[2])}

    # A process that never saw the evicted document asks the client for it again.
    other = await make_client(apq_max_documents=2)
    miss = await other.post("/graphql", json={"extensions": persisted(sha256(documents[0]))})
    assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_hashed_mutation_over_get_is_405(make_client: MakeClient) -> None:
    client = await make_client()
    mutation = 'mutation { createUser(input: {username: "ada"}) { __typename } }'
    sha = sha256(mutation)
    await client.post(
        "/graphql", json={"query": mutation, "extensions": persisted(sha)}
    )  # registered by POST
    response = await client.get("/graphql", params={"extensions": json.dumps(persisted(sha))})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# --- Trusted documents ------------------------------------------------------------------

TRUSTED = "query Count { songs { totalCount } }"
TRUSTED_ID = sha256(TRUSTED)


@pytest.fixture(params=["flat", "apollo"])
def manifest(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The two manifest shapes client build tools emit."""
    path = tmp_path / "trusted-documents.json"
    if request.param == "flat":
        path.write_text(json.dumps({TRUSTED_ID: TRUSTED}))
    else:
        path.write_text(
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": [
                        {"id": TRUSTED_ID, "name": "Count", "type": "query", "body": TRUSTED}
                    ],
                }
            )
        )
    return path


async def test_trusted_documents_run_by_hash_or_by_their_text(
    make_client: MakeClient, db: Database, manifest: Path
) -> None:
    client = await make_client(trusted_documents=manifest)
    by_hash = await client.post("/graphql", json={"extensions": persisted(TRUSTED_ID)})
    assert by_hash.json() == {"data": {"songs": {"totalCount": 0}}}
    by_get = await client.get("/graphql", params={"extensions": json.dumps(persisted(TRUSTED_ID))})
    assert by_get.json() == {"data": {"songs": {"totalCount": 0}}}
    by_text = await client.post("/graphql", json={"query": TRUSTED})
    assert by_text.json() == {"data": {"songs": {"totalCount": 0}}}


async def test_anything_else_is_refused_in_trusted_mode(
    make_client: MakeClient, db: Database, manifest: Path
) -> None:
    client = await make_client(trusted_documents=manifest)
    other = "{ songs { totalCount } }"
    refused = await client.post(
        "/graphql", json={"query": other}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert refused.status_code == 400
    body = refused.json()
    assert "data" not in body
    assert codes(body) == ["OPERATION_NOT_TRUSTED"]
    assert "trusted documents" in body["errors"][0]["message"]

    unknown = await client.post("/graphql", json={"extensions": persisted(sha256(other))})
    assert codes(unknown.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]

    # Registering through APQ is not a way in.
    register = await client.post(
        "/graphql", json={"query": other, "extensions": persisted(sha256(other))}
    )
    assert codes(register.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert await stored(db) == {}


def test_an_unreadable_manifest_stops_the_server_at_start(tmp_path: Path, db: Database) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ValueError, match="SONGBOOK_TRUSTED_DOCUMENTS"):
        create_app(Settings(database=db.settings, trusted_documents=broken), db=db)
    with pytest.raises(ValueError, match="SONGBOOK_TRUSTED_DOCUMENTS"):
        create_app(Settings(database=db.settings, trusted_documents=tmp_path / "nope"), db=db)


async def test_migrations_create_the_store_the_models_describe(db: Database) -> None:
    def store_differences(connection: sa.Connection) -> list[Any]:
        return [diff for diff in differences(connection) if "persisted_queries" in repr(diff)]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(store_differences) == []


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_trusted_mode_holds_on_websockets_too(
    empty_url: str, tmp_path: Path, protocol: str
) -> None:
    subscription = "subscription Live { jobUpdated { status } }"
    add = (
        'mutation Add { createSongWithJob(input: {title: "Hello", artist: "Adele", '
        "source: UPLOAD}) { __typename } }"
    )
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({sha256(subscription): subscription, sha256(add): add}))
    env = {"SONGBOOK_TRUSTED_DOCUMENTS": str(manifest)}
    with live_server(empty_url, tmp_path, env) as server:
        async with graphql_socket(server.ws_url, protocol) as socket:
            await socket.subscribe("subscription { jobUpdated { id status } }")
            refused = await socket.receive()
            assert refused["type"] == "error"
            payload = refused["payload"]
            error = payload[0] if isinstance(payload, list) else payload
            assert error["extensions"]["code"] == "OPERATION_NOT_TRUSTED"

            await socket.send(
                {
                    "id": "by-hash",
                    "type": "subscribe" if protocol == TRANSPORT_WS else "start",
                    "payload": {"extensions": persisted(sha256(subscription))},
                }
            )
            await socket.expect_silence(0.5)  # subscribed, waiting for job changes
            async with httpx.AsyncClient() as http:
                added = await http.post(server.graphql_url, json={"query": add})
            # (On PostgreSQL the mutation also answers extensions.readAfter.)
            assert added.json()["data"] == {
                "createSongWithJob": {"__typename": "CreateSongWithJobSuccess"}
            }
            assert await socket.next_data() == {"jobUpdated": {"status": "PENDING"}}


async def test_the_protocols_own_rules_come_before_the_document_policy(
    empty_url: str, tmp_path: Path
) -> None:
    """graphql-transport-ws closes with 4401 for a subscribe before connection_init and
    4409 for an id in use, whatever the document; trusted mode must not answer first."""
    subscription = "subscription Live { jobUpdated { status } }"
    untrusted = {"query": "subscription { jobUpdated { id } }"}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({sha256(subscription): subscription}))
    env = {"SONGBOOK_TRUSTED_DOCUMENTS": str(manifest)}
    with live_server(empty_url, tmp_path, env) as server:
        async with connect(server.ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as raw:
            await raw.send(json.dumps({"id": "1", "type": "subscribe", "payload": untrusted}))
            with pytest.raises(ConnectionClosed) as unacknowledged:
                await asyncio.wait_for(raw.recv(), 10)
        assert unacknowledged.value.rcvd is not None
        assert unacknowledged.value.rcvd.code == 4401

        async with graphql_socket(server.ws_url) as socket:
            trusted = {"extensions": persisted(sha256(subscription))}
            await socket.send({"id": "live", "type": "subscribe", "payload": trusted})
            await socket.expect_silence(0.3)  # subscribed, waiting for job changes
            await socket.send({"id": "live", "type": "subscribe", "payload": untrusted})
            with pytest.raises(ConnectionClosed) as duplicate:
                await socket.receive()
        assert duplicate.value.rcvd is not None
        assert duplicate.value.rcvd.code == 4409


# --- Automatic persisted queries over WebSocket -----------------------------------------


async def send_persisted(
    socket: GraphQLSocket, id: str, sha: str, query: str | None = None
) -> None:
    """Start an operation named by its hash, with its text when `query` is given."""
    payload: dict[str, Any] = {"extensions": persisted(sha)}
    if query is not None:
        payload["query"] = query
    kind = "subscribe" if socket.protocol == TRANSPORT_WS else "start"
    await socket.send({"id": id, "type": kind, "payload": payload})


async def refusal_codes(socket: GraphQLSocket) -> list[str]:
    """The codes of the errors that refuse the next operation, however the protocol says it."""
    message = await socket.receive()
    if message["type"] in ("next", "data"):
        assert "data" not in message["payload"] or message["payload"]["data"] is None, message
        errors = message["payload"]["errors"]
    else:
        assert message["type"] == "error", message
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else [payload]
    return [error.get("extensions", {}).get("code") for error in errors]


LIVE = "subscription Live { jobUpdated { status } }"
ADD = (
    'mutation Add { createSongWithJob(input: {title: "Hello", artist: "Adele", '
    "source: UPLOAD}) { __typename } }"
)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_apq_registers_a_subscription_over_websocket(
    empty_url: str, tmp_path: Path, protocol: str
) -> None:
    sha = sha256(LIVE)
    with live_server(empty_url, tmp_path) as server:
        async with graphql_socket(server.ws_url, protocol) as socket:
            # Unknown: the client is asked for the document, as over HTTP.
            await send_persisted(socket, "miss", sha)
            assert await refusal_codes(socket) == ["PERSISTED_QUERY_NOT_FOUND"]

        async with graphql_socket(server.ws_url, protocol) as registering:
            await send_persisted(registering, "register", sha, LIVE)
            await registering.expect_silence(0.5)  # subscribed, waiting for job changes

            async with graphql_socket(server.ws_url, protocol) as by_hash:
                await send_persisted(by_hash, "by-hash", sha)
                await by_hash.expect_silence(0.5)  # found and subscribed, not refused
                async with httpx.AsyncClient() as http:
                    added = await http.post(server.graphql_url, json={"query": ADD})
                assert added.json()["data"] == {
                    "createSongWithJob": {"__typename": "CreateSongWithJobSuccess"}
                }
                assert await by_hash.next_data() == {"jobUpdated": {"status": "PENDING"}}
                assert await registering.next_data() == {"jobUpdated": {"status": "PENDING"}}


async def test_apq_registers_a_query_over_websocket_for_every_transport(
    empty_url: str, tmp_path: Path
) -> None:
    """graphql-transport-ws runs queries too; one registered there runs by hash alone over
    WebSocket, POST and GET alike (the legacy graphql-ws only runs subscriptions)."""
    sha = sha256(QUERY)
    with live_server(empty_url, tmp_path) as server:
        async with graphql_socket(server.ws_url, TRANSPORT_WS) as socket:
            await send_persisted(socket, "miss", sha)
            assert await refusal_codes(socket) == ["PERSISTED_QUERY_NOT_FOUND"]

            await send_persisted(socket, "register", sha, QUERY)
            assert await socket.next_data() == {"songs": {"totalCount": 0}}
            assert await socket.receive() == {"id": "register", "type": "complete"}

        async with graphql_socket(server.ws_url, TRANSPORT_WS) as socket:
            await send_persisted(socket, "by-hash", sha)
            assert await socket.next_data() == {"songs": {"totalCount": 0}}

        async with httpx.AsyncClient() as http:
            by_post = await http.post(server.graphql_url, json={"extensions": persisted(sha)})
            assert by_post.json() == {"data": {"songs": {"totalCount": 0}}}
            by_get = await http.get(
                server.graphql_url,
                params={"operationName": "Count", "extensions": json.dumps(persisted(sha))},
            )
            assert by_get.status_code == 200
            assert by_get.json() == {"data": {"songs": {"totalCount": 0}}}
