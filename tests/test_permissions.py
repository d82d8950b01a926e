"""Who may do what, against a real server process on each backend: every role against every
mutation and guarded field, bad tokens, the anonymous roles, and the WebSocket handshake."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from persistence.database import Database
from persistence.models import Base
from persistence.settings import DatabaseSettings
from tests.auth import JWT_SECRET, bearer, issue_token, signed_jwt
from tests.live import LiveServer, live_server, run_command
from tests.ws import LEGACY_WS, TRANSPORT_WS, graphql_socket

FORBIDDEN = "FORBIDDEN"
ROLES = ("reader", "editor", "worker", "admin")


@dataclass
class Library:
    """A live server, its database, and a token for each role."""

    server: LiveServer
    url: str
    db: Database
    tokens: dict[str, str]

    def client(self, caller: str | None) -> httpx.AsyncClient:
        if caller is None:
            headers = {}
        elif caller.startswith("jwt:"):
            # "jwt:SUBJECT" or "jwt:SUBJECT@ROLE": a person, a reader unless the token says.
            subject, _, role = caller.removeprefix("jwt:").partition("@")
            claims: dict[str, Any] = {"songbook_role": role} if role else {}
            headers = bearer(signed_jwt(subject, **claims))
        else:
            headers = bearer(self.tokens[caller])
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=10)

    async def post(self, caller: str | None, query: str, **variables: Any) -> dict[str, Any]:
        async with self.client(caller) as http:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, caller: str | None, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.post(caller, query, **variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: what a refused request must leave as it was."""
        async with self.db.session() as session:
            return {
                table.name: sorted(
                    tuple(str(v) for v in row) for row in await session.execute(table.select())
                )
                for table in Base.metadata.sorted_tables
            }


@pytest.fixture(scope="module")
def library_url(module_url: str) -> str:
    return module_url


@pytest.fixture(scope="module")
def library_server(
    library_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = {"SONGBOOK_JWT_SECRET": JWT_SECRET, "SONGBOOK_TOKEN_CACHE_SECONDS": "1"}
    with live_server(library_url, tmp_path_factory.mktemp("auth"), env) as server:
        yield server


@pytest.fixture
async def library(library_server: LiveServer, library_url: str) -> AsyncIterator[Library]:
    db = Database(DatabaseSettings(url=library_url))
    tokens = {role: await issue_token(db, role) for role in ROLES}
    try:
        yield Library(library_server, library_url, db, tokens)
    finally:
        await db.dispose()


SONG_INPUT = {"title": "Rolling in the Deep", "artist": "Adele", "source": "UPLOAD"}
CREATE_SONG_WITH_JOB = """mutation($input: CreateSongInput!) { createSongWithJob(input: $input) {
  ... on CreateSongWithJobSuccess { song { id } job { id } } } }"""
CREATE_USER = """mutation($input: CreateUserInput!) { createUser(input: $input) {
  ... on CreateUserSuccess { user { id } } } }"""


async def song_and_job(library: Library) -> dict[str, str]:
    data = await library.data("admin", CREATE_SONG_WITH_JOB, input=SONG_INPUT)
    made = data["createSongWithJob"]
    return {"song": made["song"]["id"], "job": made["job"]["id"]}


# Each mutation, the roles allowed to call it, what an allowed call of it on a fresh song
# and PENDING job answers (a job the caller does not hold cannot be reported on; a PENDING
# one cannot be retried), and the call.
MUTATIONS: list[tuple[str, set[str], str, str, Any]] = [
    ("createSong", {"editor", "admin"}, "CreateSongSuccess", "mutation($i: CreateSongInput!) { createSong(input: $i) { __typename } }", lambda ids: {"i": SONG_INPUT}),
    ("createSongWithJob", {"editor", "admin"}, "CreateSongWithJobSuccess", "mutation($i: CreateSongInput!) { createSongWithJob(input: $i) { __typename } }", lambda ids: {"i": SONG_INPUT}),
    ("updateSong", {"editor", "admin"}, "UpdateSongSuccess", 'mutation($id: ID!) { updateSong(input: {id: $id, title: "New"}) { __typename } }', lambda ids: {"id": ids["song"]}),
    ("deleteSong", {"editor", "admin"}, "DeleteSongSuccess", "mutation($id: ID!) { deleteSong(id: $id) { __typename } }", lambda ids: {"id": ids["song"]}),
    ("retryJob", {"editor", "admin"}, "InvalidJobTransitionError", "mutation($id: ID!) { retryJob(songId: $id) { __typename } }", lambda ids: {"id": ids["song"]}),
    ("claimJob", {"worker", "admin"}, "ClaimJobSuccess", "mutation { claimJob { __typename } }", lambda ids: {}),
    ("reportJobProgress", {"worker", "admin"}, "ClaimNotHeldError", "mutation($id: ID!) { reportJobProgress(jobId: $id, progress: 5) { __typename } }", lambda ids: {"id": ids["job"]}),
    ("completeJob", {"worker", "admin"}, "ClaimNotHeldError", "mutation($id: ID!) { completeJob(jobId: $id) { __typename } }", lambda ids: {"id": ids["job"]}),
    ("failJob", {"worker", "admin"}, "ClaimNotHeldError", 'mutation($id: ID!) { failJob(jobId: $id, message: "no") { __typename } }', lambda ids: {"id": ids["job"]}),
    ("updateJob", {"admin"}, "UpdateJobSuccess", "mutation($id: ID!) { updateJob(input: {id: $id, status: PROCESSING, progress: 5}) { __typename } }", lambda ids: {"id": ids["job"]}),
    ("createUser", {"admin"}, "CreateUserSuccess", "mutation($u: String!) { createUser(input: {username: $u}) { __typename } }", lambda ids: {"u": f"u{uuid.uuid4().hex[:10]}"}),
]  # fmt: skip
# Callers: anonymous (an editor in development), each role's API token, and people
# signed in with a JWT (a reader unless its songbook_role claim says otherwise).
CALLERS: list[tuple[str | None, str]] = [
    (None, "editor"),
    *((role, role) for role in ROLES),
    ("jwt:person-1", "reader"),
    *((f"jwt:person-{role}@{role}", role) for role in ("editor", "worker", "admin")),
]


@pytest.mark.parametrize(("caller", "role"), CALLERS, ids=lambda v: str(v))
async def test_each_role_may_call_exactly_its_mutations(
    library: Library, caller: str | None, role: str
) -> None:
    # A person's first request makes their user; that is signing in, not the mutation.
    await library.data(caller, "{ viewer { id } }")
    for name, allowed, answer, mutation, variables in MUTATIONS:
        ids = await song_and_job(library)
        before = await library.snapshot()
        body = await library.post(caller, mutation, **variables(ids))
        if role in allowed:
            assert "errors" not in body, (name, role, body)
            assert body["data"][name]["__typename"] == answer, (name, role, body)
        else:
            assert body.get("data") is None, (name, role, body)
            [error] = body["errors"]
            assert (error["extensions"]["code"], error["path"]) == (FORBIDDEN, [name]), body
            assert await library.snapshot() == before, f"{role} changed something via {name}"


@pytest.mark.parametrize(("caller", "role"), CALLERS, ids=lambda v: str(v))
async def test_every_caller_may_read(library: Library, caller: str | None, role: str) -> None:
    ids = await song_and_job(library)
    data = await library.data(
        caller,
        "query($id: ID!) { node(id: $id) { id } songs(first: 1) { totalCount } jobs(first: 1) { edges { node { id } } } }",
        id=ids["song"],
    )
    assert data["node"] == {"id": ids["song"]}


async def test_email_is_shown_to_its_user_and_admins_only(library: Library) -> None:
    # A person signing in for the first time becomes a user; `viewer` is that user.
    me = (await library.data("jwt:ada-sub", "{ viewer { id username email } }"))["viewer"]
    assert me["email"] is None and me["id"]
    assert (await library.data("jwt:ada-sub", "{ viewer { id } }"))["viewer"]["id"] == me["id"]
    for caller in (None, *ROLES):
        assert (await library.data(caller, "{ viewer { id } }"))["viewer"] is None

    made = await library.data(
        "admin",
        CREATE_USER,
        input={"username": f"bo{uuid.uuid4().hex[:8]}", "email": "bo@example.com"},
    )
    other = made["createUser"]["user"]["id"]
    query = "query($id: ID!) { user(id: $id) { username email } }"
    assert (await library.data("admin", query, id=other))["user"]["email"] == "bo@example.com"
    assert (await library.data("jwt:ada-sub", query, id=me["id"]))["user"]["email"] is None
    for caller in (None, "reader", "editor", "worker", "jwt:ada-sub"):
        body = await library.post(caller, query, id=other)
        assert body["data"]["user"]["email"] is None
        assert body["data"]["user"]["username"].startswith("bo")
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["path"]) == (FORBIDDEN, ["user", "email"])


async def test_workers_act_only_as_themselves(library: Library) -> None:
    ids = await song_and_job(library)
    name_query = "mutation { claimJob { ... on ClaimJobSuccess { job { id claimedBy } } } }"
    # Drain anything queued by other tests; ours is the oldest waiting one or later.
    claimed: dict[str, Any] | None = {}
    while claimed is not None and claimed.get("id") != ids["job"]:
        claimed = (await library.data("worker", name_query))["claimJob"]["job"]
    assert claimed is not None
    worker_name = claimed["claimedBy"]
    # Naming another worker is refused; naming itself is the same as leaving it out.
    body = await library.post(
        "worker",
        'mutation($id: ID!) { reportJobProgress(jobId: $id, workerId: "someone-else", progress: 5) { __typename } }',
        id=ids["job"],
    )
    assert body["errors"][0]["extensions"]["code"] == FORBIDDEN
    report = "mutation($id: ID!, $w: String) { reportJobProgress(jobId: $id, workerId: $w, progress: 50) { __typename ... on WorkerJobSuccess { job { progress } } } }"
    data = await library.data("worker", report, id=ids["job"], w=worker_name)
    assert data["reportJobProgress"]["job"]["progress"] == 50

    # Another worker's token cannot report on, complete or fail the job this one holds.
    other = await issue_token(library.db, "worker")
    async with httpx.AsyncClient(base_url=library.server.url, headers=bearer(other)) as http:
        for mutation in (
            "completeJob(jobId: $id)",
            'failJob(jobId: $id, message: "mine now")',
            "reportJobProgress(jobId: $id, progress: 90)",
        ):
            response = await http.post(
                "/graphql",
                json={
                    "query": f"mutation($id: ID!) {{ {mutation} {{ __typename }} }}",
                    "variables": {"id": ids["job"]},
                },
            )
            assert next(iter(response.json()["data"].values()))["__typename"] == "ClaimNotHeldError"
    done = await library.data(
        "worker", "mutation($id: ID!) { completeJob(jobId: $id) { __typename } }", id=ids["job"]
    )
    assert done["completeJob"]["__typename"] == "WorkerJobSuccess"


BAD_TOKENS = {
    "garbage": "Bearer not-a-token",
    "unknown API token": "Bearer sbk_" + "x" * 43,
    "expired JWT": "Bearer " + signed_jwt("late", lifetime=-60),
    "JWT signed with another key": "Bearer "
    + signed_jwt("mallory", secret="another-secret-of-at-least-32-bytes"),
    "wrong scheme": "Basic dXNlcjpwYXNz",
}


@pytest.mark.parametrize("header", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_bad_token_is_401_never_anonymous(library: Library, header: str) -> None:
    async with httpx.AsyncClient(base_url=library.server.url) as http:
        for accept in ("application/json", "application/graphql-response+json"):
            response = await http.post(
                "/graphql",
                json={"query": "{ songs(first: 1) { totalCount } }"},
                headers={"Authorization": header, "Accept": accept},
            )
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            [error] = response.json()["errors"]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            assert header.split()[-1] not in response.text


async def test_a_revoked_token_is_refused_by_the_running_server(library: Library) -> None:
    token = await issue_token(library.db, "editor", name="soon-revoked")
    query = "{ songs(first: 1) { totalCount } }"
    async with httpx.AsyncClient(base_url=library.server.url, headers=bearer(token)) as http:
        assert (await http.post("/graphql", json={"query": query})).status_code == 200
        assert (await run_command(library.url, "token", "revoke", "soon-revoked"))[0] == 0
        for _ in range(100):
            if (await http.post("/graphql", json={"query": query})).status_code == 401:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the revoked token still works after 10 s")


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_takes_its_token_from_connection_init(
    library: Library, protocol: str
) -> None:
    subscription = "subscription { jobUpdated { id } }"
    async with graphql_socket(
        library.server.ws_url,
        protocol,
        init={"Authorization": f"Bearer {library.tokens['reader']}"},
    ) as socket:
        await socket.subscribe(subscription)
        await socket.expect_silence(0.2)
        # One connection_init per connection: another could swap who is asking.
        await socket.send({"type": "connection_init", "payload": {}})
        with pytest.raises(ConnectionClosed) as again:
            await socket.receive()
        assert again.value.rcvd is not None and again.value.rcvd.code == 4429
    for init in ({"Authorization": "Bearer sbk_unknown"}, {"Authorization": 5}):
        with pytest.raises(ConnectionClosed) as closed:
            async with graphql_socket(library.server.ws_url, protocol, init=init):
                pass
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_subscription_ends_when_its_token_is_revoked(library: Library) -> None:
    name = f"watcher-{uuid.uuid4().hex[:6]}"
    token = await issue_token(library.db, "reader", name=name)
    async with graphql_socket(
        library.server.ws_url, TRANSPORT_WS, init={"Authorization": f"Bearer {token}"}
    ) as socket:
        await socket.subscribe("subscription { jobUpdated { id } }")
        assert (await run_command(library.url, "token", "revoke", name))[0] == 0
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive(within=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_anonymous_roles(library_url: str, tmp_path: Path) -> None:
    query = {"query": "{ songs(first: 1) { totalCount } }"}
    create = {
        "query": "mutation($i: CreateSongInput!) { createSong(input: $i) { __typename } }",
        "variables": {"i": SONG_INPUT},
    }
    with live_server(library_url, tmp_path, {"SONGBOOK_ANONYMOUS": "none"}) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.post("/graphql", json=query)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        with pytest.raises(ConnectionClosed) as closed:
            async with graphql_socket(server.ws_url, TRANSPORT_WS):
                pass
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    with live_server(library_url, tmp_path, {"SONGBOOK_ANONYMOUS": "reader"}) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post("/graphql", json=query)).status_code == 200
            body = (await http.post("/graphql", json=create)).json()
            assert body["errors"][0]["extensions"]["code"] == FORBIDDEN


async def test_a_subscription_ends_when_its_jwt_expires(library: Library) -> None:
    token = signed_jwt("short-lived", lifetime=2)
    async with graphql_socket(
        library.server.ws_url, TRANSPORT_WS, init={"Authorization": f"Bearer {token}"}
    ) as socket:
        await socket.subscribe("subscription { jobUpdated { id } }")
        # Expiry, plus at most 5 s of clock leeway, plus the 2 s between checks.
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive(within=12)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_person_cannot_pass_for_a_token_worker(library: Library) -> None:
    """A JWT whose subject is a worker token's name works as `jwt:<subject>`: it cannot
    report on, complete or fail the jobs that token holds."""
    name = f"w-{uuid.uuid4().hex[:8]}"
    token = await issue_token(library.db, "worker", name=name)
    ids = await song_and_job(library)
    claim = "mutation { claimJob { ... on ClaimJobSuccess { job { id claimedBy } } } }"
    async with httpx.AsyncClient(base_url=library.server.url, headers=bearer(token)) as http:
        while True:
            response = await http.post("/graphql", json={"query": claim})
            job = response.json()["data"]["claimJob"]["job"]
            assert job is not None, "our job was never handed out"
            if job["id"] == ids["job"]:
                break
    assert job["claimedBy"] == name
    impostor = f"jwt:{name}@worker"
    complete = "mutation($id: ID!) { completeJob(jobId: $id) { __typename } }"
    data = await library.data(impostor, complete, id=ids["job"])
    assert data["completeJob"]["__typename"] == "ClaimNotHeldError"
    named = (
        "mutation($id: ID!, $w: String) { completeJob(jobId: $id, workerId: $w) { __typename } }"
    )
    body = await library.post(impostor, named, id=ids["job"], w=name)
    assert body["errors"][0]["extensions"]["code"] == FORBIDDEN
