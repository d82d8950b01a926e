"""The clients people use, against a live Songbook: the graphql-http audit, Apollo Client,
GraphQL Code Generator over tests/operations, GraphiQL in headless Chromium, WebSockets.

The JavaScript tools are pinned in tests/clients (npm ci at the start of the session).
What they leave behind for people goes to test-artifacts/: the audit report and the
GraphiQL screenshot.
"""

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from graphql import build_schema, parse, validate
from websockets.typing import Subprotocol

from tests import js
from tests.auth import bearer, issue_token
from tests.live import LiveServer, live_server

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = sorted((ROOT / "tests" / "operations").glob("*.graphql"))
SCHEMA_PATH = ROOT / "schema.graphql"


@pytest.fixture(scope="session")
def clients() -> None:
    js.install()
    js.ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clients: None) -> Iterator[LiveServer]:
    """One Songbook process on its own SQLite database, with a song and its job."""
    folder = tmp_path_factory.mktemp("clients")
    url = f"sqlite+aiosqlite:///{folder / 'songbook.db'}"
    with live_server(url, folder) as live:
        ADMIN.update(bearer(asyncio.run(issue_token(url, "admin"))))
        yield live


# Headers of an admin's token on the module's server: the test moves jobs on with updateJob.
ADMIN: dict[str, str] = {}


def graphql(server: LiveServer, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        server.graphql_url, json={"query": query, "variables": variables}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


def operation(name: str) -> str:
    return (ROOT / "tests" / "operations" / f"{name}.graphql").read_text()


def add_song(server: LiveServer, youtube_id: str, title: str = "Hello") -> dict[str, Any]:
    result = graphql(
        server,
        operation("AddSongFromYouTube"),
        input={"title": title, "artist": "Adele", "source": "YOUTUBE", "youtubeId": youtube_id},
    )["data"]["createSongWithJob"]
    assert result["__typename"] == "CreateSongWithJobSuccess", result
    added: dict[str, Any] = result
    return added


# --- GraphQL over HTTP ----------------------------------------------------------------


def test_graphql_http_audit_passes_without_warnings(server: LiveServer) -> None:
    report = js.run("audit.mjs", server.graphql_url)
    (js.ARTIFACTS / "graphql-http-audit.json").write_text(json.dumps(report, indent=2))
    totals = {key: report[key] for key in ("ok", "notice", "warn", "error", "total")}
    print(f"graphql-http audit: {totals}")
    for result in report["results"]:
        print(f"  {result['status']} {result['id']} {result['name']}: {result['reason']}")
    problems = [r for r in report["results"] if r["status"] in ("warn", "error")]
    assert problems == []
    assert report["error"] == 0 and report["warn"] == 0
    assert report["ok"] + report["notice"] == report["total"] > 0


# --- tests/operations: what a single-page app sends -----------------------------------


def test_there_are_operations_for_each_screen() -> None:
    names = {path.stem for path in OPERATIONS}
    assert {"LibraryPage", "SongDetail", "AddSongFromYouTube", "JobProgress"} <= names


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_operations_validate_against_the_schema(path: Path) -> None:
    schema = build_schema(SCHEMA_PATH.read_text())
    errors = validate(schema, parse(path.read_text()))
    assert errors == []


def test_operations_compile_with_graphql_code_generator(clients: None, tmp_path: Path) -> None:
    outfile = tmp_path / "operations.ts"
    result = js.run(
        "codegen.mjs",
        str(SCHEMA_PATH),
        str(ROOT / "tests" / "operations" / "*.graphql"),
        str(outfile),
    )
    assert result["ok"] is True
    generated = outfile.read_text()
    for path in OPERATIONS:
        kind = "Mutation" if "mutation " in path.read_text() else "Query"
        if "subscription " in path.read_text():
            kind = "Subscription"
        assert f"export type {path.stem}{kind} = " in generated
        assert f"export type {path.stem}{kind}Variables = " in generated


def test_queries_and_mutations_of_the_operations_run_against_a_live_server(
    server: LiveServer,
) -> None:
    added = add_song(server, "opsYouTube1", title="Rolling in the Deep")
    song, job = added["song"], added["job"]
    assert job["status"] == "PENDING"

    again = graphql(
        server,
        operation("AddSongFromYouTube"),
        input={
            "title": "Again",
            "artist": "Adele",
            "source": "YOUTUBE",
            "youtubeId": "opsYouTube1",
        },
    )["data"]["createSongWithJob"]
    assert again["__typename"] == "ConflictError"
    assert again["existingSong"]["id"] == song["id"]

    page = graphql(server, operation("LibraryPage"), search="rolling", first=1)["data"]["songs"]
    assert page["totalCount"] == 1
    row = page["edges"][0]["node"]
    assert row["id"] == song["id"]
    assert row["latestJob"]["id"] == job["id"]
    nothing = graphql(
        server, operation("LibraryPage"), search="rolling", after=page["pageInfo"]["endCursor"]
    )["data"]["songs"]
    assert nothing["edges"] == [] and nothing["pageInfo"]["hasNextPage"] is False

    detail = graphql(server, operation("SongDetail"), id=song["id"])["data"]["song"]
    assert detail["__typename"] == "Song"
    assert detail["youtubeId"] == "opsYouTube1"
    assert [edge["node"]["id"] for edge in detail["jobs"]["edges"]] == [job["id"]]


UPDATE_JOB = """
mutation($input: UpdateJobInput!) { updateJob(input: $input) { __typename } }
"""


def progress_until_done(server: LiveServer, job_id: str, process: "subprocess.Popen[str]") -> None:
    """Move the job on, a step a second, until the watching client has seen enough."""
    graphql(server, UPDATE_JOB, input={"id": job_id, "status": "PROCESSING", "progress": 1})
    for progress in range(2, 100):
        if process.poll() is not None:
            return
        time.sleep(1)
        graphql(server, UPDATE_JOB, input={"id": job_id, "progress": progress})


def test_job_progress_subscription_streams_live_updates(server: LiveServer) -> None:
    added = add_song(server, "subscribeY1", title="Hometown Glory")
    process = js.start(
        "subscribe.mjs",
        server.ws_url,
        operation("JobProgress"),
        json.dumps({"songId": added["song"]["id"]}),
        "2",
        SUBSCRIBE_TIMEOUT_MS="60000",
    )
    progress_until_done(server, added["job"]["id"], process)
    result = js.finish(process)
    assert result["error"] is None
    events = [event["data"]["jobUpdated"] for event in result["events"]]
    assert len(events) == 2
    assert {event["id"] for event in events} == {added["job"]["id"]}
    assert events[0]["status"] == "PROCESSING"
    assert events[0]["song"]["title"] == "Hometown Glory"
    assert events[1]["progress"] > events[0]["progress"]


# --- Apollo Client --------------------------------------------------------------------


def test_apollo_client_queries_mutates_and_persists_queries_over_get(
    server: LiveServer, tmp_path: Path
) -> None:
    song = add_song(server, "apolloYT001", title="Someone Like You")["song"]
    ops = {
        "query": operation("LibraryPage"),
        "variables": {"search": "someone"},
        "mutation": operation("AddSongFromYouTube"),
        "mutationVariables": {
            "input": {
                "title": "Skyfall",
                "artist": "Adele",
                "source": "YOUTUBE",
                "youtubeId": "apolloYT002",
            }
        },
        "persistedQuery": operation("SongDetail"),
        "persistedVariables": {"id": song["id"]},
    }
    ops_path = tmp_path / "ops.json"
    ops_path.write_text(json.dumps(ops))
    result = js.run("apollo.mjs", server.graphql_url, str(ops_path))
    assert result["errors"] == {}

    songs = result["query"]["songs"]
    assert songs["totalCount"] == 1
    assert songs["edges"][0]["node"]["title"] == "Someone Like You"
    created = result["mutation"]["createSongWithJob"]
    assert created["__typename"] == "CreateSongWithJobSuccess"
    assert created["job"]["status"] == "PENDING"
    detail = result["persisted"]["first"]["song"]
    assert detail["title"] == "Someone Like You"
    assert detail["jobs"]["totalCount"] == 1
    assert result["persisted"]["second"] == result["persisted"]["first"]

    first = [r for r in result["requests"] if r["step"] == "persisted-1"]
    second = [r for r in result["requests"] if r["step"] == "persisted-2"]
    # First run: a hash-only GET the server does not know, then the POST registering it.
    assert [(r["method"], r["hasQuery"], r["hasHash"]) for r in first] == [
        ("GET", False, True),
        ("POST", True, True),
    ]
    assert first[0]["errorMessages"] == ["PersistedQueryNotFound"]
    # Second run: one hash-only GET, answered from the shared store.
    assert [(r["method"], r["hasQuery"], r["hasHash"], r["status"]) for r in second] == [
        ("GET", False, True, 200)
    ]
    assert second[0]["errorMessages"] == []
    assert second[0]["contentType"].startswith("application/graphql-response+json")


# --- GraphiQL in a browser ------------------------------------------------------------


def test_graphiql_runs_a_query_in_headless_chromium(server: LiveServer) -> None:
    if not js.CHROMIUM.exists():
        pytest.fail(f"{js.CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    add_song(server, "browserYT01", title="Chasing Pavements")
    page = httpx.get(server.graphql_url, headers={"accept": "text/html"}).text
    assert "/graphql/assets/graphiql.min.js" in page, "GraphiQL should be served offline"

    screenshot = js.ARTIFACTS / "graphiql.png"
    screenshot.unlink(missing_ok=True)
    query = '{ songs(search: "pavements") { totalCount edges { node { title } } } }'
    result = js.run("browser.mjs", server.graphql_url, str(screenshot), query, timeout=180)
    assert result["failedRequests"] == [], result
    assert result["consoleErrors"] == [], result
    shown = json.loads(result["result"])
    assert shown == {
        "data": {"songs": {"totalCount": 1, "edges": [{"node": {"title": "Chasing Pavements"}}]}}
    }
    assert screenshot.stat().st_size > 10_000


def test_graphiql_has_schema_docs_and_query_history(server: LiveServer) -> None:
    screenshot = js.ARTIFACTS / "graphiql-docs-history.png"
    query = "query LibraryCount { songs { totalCount } }"
    result = js.run("panes.mjs", server.graphql_url, str(screenshot), query, timeout=180)
    assert result["consoleErrors"] == [], result
    assert "query: Query mutation: Mutation subscription: Subscription" in result["docs"]
    assert "Song" in result["docs"].split()
    assert result["history"] == ["LibraryCount"]


def test_graphiql_shows_live_job_progress(server: LiveServer) -> None:
    added = add_song(server, "browserYT02", title="Make You Feel My Love")
    job_id = added["job"]["id"]
    query = f'subscription {{ jobUpdated(jobId: "{job_id}") {{ status progress }} }}'
    screenshot = js.ARTIFACTS / "graphiql-subscription.png"
    process = js.start("browser.mjs", server.graphql_url, str(screenshot), query)
    progress_until_done(server, job_id, process)
    result = js.finish(process, timeout=180)
    assert result["failedRequests"] == [], result
    assert result["consoleErrors"] == [], result
    shown = json.loads(result["result"])
    assert shown["data"]["jobUpdated"]["status"] == "PROCESSING"
    assert shown["data"]["jobUpdated"]["progress"] >= 1


# --- WebSocket origins follow the CORS allow-list -------------------------------------


async def _handshake(url: str, origin: str | None) -> str:
    headers = {"Origin": origin} if origin else {}
    try:
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            additional_headers=headers,
        ) as socket:
            await socket.send(json.dumps({"type": "connection_init"}))
            return str(json.loads(await socket.recv())["type"])
    except websockets.InvalidStatus as error:
        return f"HTTP {error.response.status_code}"


def test_websocket_origins_follow_the_cors_allow_list(tmp_path: Path, clients: None) -> None:
    env = {"SONGBOOK_CORS_ORIGINS": "https://app.example"}
    with live_server(f"sqlite+aiosqlite:///{tmp_path / 'songbook.db'}", tmp_path, env) as live:
        allowed = httpx.post(
            live.graphql_url,
            json={"query": "{ __typename }"},
            headers={"origin": "https://app.example"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"

        async def handshakes() -> list[str]:
            return [
                await _handshake(live.ws_url, "https://app.example"),
                await _handshake(live.ws_url, "https://evil.example"),
                await _handshake(live.ws_url, None),
            ]

        assert asyncio.run(handshakes()) == ["connection_ack", "HTTP 403", "connection_ack"]
