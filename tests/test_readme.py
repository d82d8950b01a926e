"""The README's examples, as a new user meets them: each GraphQL block validates against the
schema and runs, in the README's order, against a real `songbook serve`; so does its Node.js
subscription script, with the pinned graphql-ws and ws of tests/clients."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, build_schema, parse, validate

from tests import js
from tests.live import live_server, run_command
from tests.ws import graphql_socket

ROOT = Path(__file__).resolve().parent.parent
GRAPHQL_BLOCK = re.compile(r"^```graphql\n(.*?)^```", re.MULTILINE | re.DOTALL)
JS_BLOCK = re.compile(r"^```js\n(.*?)^```", re.MULTILINE | re.DOTALL)
README_WS_URL = "ws://127.0.0.1:8000/graphql"
# The README's commands issuing tokens, and the fields each role's token is sent for.
TOKEN_COMMAND = re.compile(
    r"^\.venv/bin/songbook (token create [^#\n]*--role (\w+))\s*(?:#.*)?$", re.MULTILINE
)
FIELDS_OF_ROLE = {
    "worker": re.compile(r"\b(claimJob|reportJobProgress|completeJob|failJob)\b"),
    "admin": re.compile(r"\b(createUser|updateJob)\b"),
}
CONNECTED = "readme-test: connected"


def readme_operations() -> list[tuple[str, str, str, list[str]]]:
    """(operation type, name, document, variable names) of every GraphQL block, in the
    README's order."""
    operations = []
    for block in GRAPHQL_BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        (definition,) = parse(block).definitions
        assert isinstance(definition, OperationDefinitionNode)
        assert definition.name is not None, f"name every README operation:\n{block}"
        variables = [node.variable.name.value for node in definition.variable_definitions or ()]
        operations.append((definition.operation.value, definition.name.value, block, variables))
    return operations


def node_script(ws_url: str, folder: Path) -> Path:
    """The README's Node.js script (the JS block importing ws), saved as the reader would,
    beside a node_modules holding tests/clients' pinned packages, pointed at `ws_url`. One
    line is added: it reports on stderr when the socket is open, so the test knows when."""
    js.install()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (script,) = [block for block in JS_BLOCK.findall(readme) if 'from "ws"' in block]
    assert script.count(README_WS_URL) == 1 and "const client = createClient(" in script
    path = folder / "watch-song.mjs"
    path.write_text(
        script.replace(README_WS_URL, ws_url)
        + f'client.on("connected", () => console.error("{CONNECTED}"));\n',
        encoding="utf-8",
    )
    (folder / "node_modules").symlink_to(js.CLIENTS / "node_modules", target_is_directory=True)
    return path


@asynccontextmanager
async def node_script_running(
    script: Path, song_id: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`node watch-song.mjs <songId>`, from when its subscription socket is open; stopped
    when the block ends."""
    process = await asyncio.create_subprocess_exec(
        "node", str(script), song_id, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        errors = []
        while (line := (await asyncio.wait_for(process.stderr.readline(), 30)).decode()) != "":
            if line.strip() == CONNECTED:
                break
            errors.append(line)
        else:
            raise AssertionError(f"node {script.name} exited:\n{''.join(errors)}")
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def json_lines(process: asyncio.subprocess.Process, count: int) -> list[Any]:
    """The next `count` lines the process prints, each decoded from JSON."""
    assert process.stdout is not None
    lines = [await asyncio.wait_for(process.stdout.readline(), 10) for _ in range(count)]
    assert all(lines), lines
    return [json.loads(line) for line in lines]


def test_every_readme_operation_validates_against_the_schema() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))
    operations = readme_operations()
    assert {kind for kind, *_ in operations} == {"query", "mutation", "subscription"}
    for _, name, document, _ in operations:
        assert validate(schema, parse(document)) == [], name


async def test_readme_examples_run_in_order_against_a_live_server(
    empty_url: str, tmp_path: Path
) -> None:
    answers: dict[str, dict[str, Any]] = {}
    # Variables the README tells the reader to carry over from an earlier answer.
    known: dict[str, str] = {}
    with live_server(empty_url, tmp_path) as server:
        script = node_script(server.ws_url, tmp_path)
        headers: dict[str, dict[str, str]] = {}
        for command, role in TOKEN_COMMAND.findall((ROOT / "README.md").read_text("utf-8")):
            status, output = await run_command(empty_url, *command.split())
            assert status == 0, output
            headers[role] = {"Authorization": f"Bearer {output.splitlines()[-1]}"}
        assert headers.keys() == FIELDS_OF_ROLE.keys()
        async with (
            httpx.AsyncClient(base_url=server.url) as http,
            graphql_socket(server.ws_url) as socket,
            AsyncExitStack() as stack,
        ):
            for kind, name, document, variable_names in readme_operations():
                variables = {variable: known[variable] for variable in variable_names}
                if kind == "subscription":
                    # The README's Node.js script watches the same song alongside.
                    node = await stack.enter_async_context(
                        node_script_running(script, known["songId"])
                    )
                    await socket.subscribe(document, **variables)
                    await asyncio.sleep(0.5)  # let the server register the subscriptions
                    continue
                response = await http.post(
                    "/graphql",
                    json={"query": document, "variables": variables},
                    headers=next(
                        (headers[r] for r, f in FIELDS_OF_ROLE.items() if f.search(document)),
                        None,
                    ),
                )
                assert response.status_code == 200, (name, response.text)
                body = response.json()
                assert "errors" not in body, (name, body)
                answers[name] = data = body["data"]
                if kind == "mutation":
                    (result,) = data.values()
                    expected = "ConflictError" if name == "Duplicate" else "Success"
                    assert result["__typename"].endswith(expected), (name, result)
                if name == "AddSong":
                    known["songId"] = data["createSongWithJob"]["song"]["id"]
                if name == "ClaimJob":
                    known["jobId"] = data["claimJob"]["job"]["id"]

            events = [(await socket.next_data())["jobUpdated"] for _ in range(3)]
            script_events = await json_lines(node, 3)

    library = answers["Library"]["songs"]
    assert library["totalCount"] == 2
    assert [edge["node"]["title"] for edge in library["edges"]] == [
        "Karaoke Classic",
        "Never Gonna Give You Up",
    ]
    assert [e["node"]["artist"] for e in answers["Search"]["songs"]["edges"]] == ["Rick Astley"]
    song = answers["SongWithJobs"]["songByYoutubeId"]
    assert song["latestJob"]["status"] == "PENDING"
    assert song["jobs"]["totalCount"] == 1
    duplicate = answers["Duplicate"]["createSong"]
    assert duplicate["existingSong"]["title"] == "Never Gonna Give You Up"

    claimed = answers["ClaimJob"]["claimJob"]["job"]
    assert claimed["status"] == "PROCESSING"
    assert claimed["claimedBy"] == "worker-1"
    assert claimed["song"]["title"] == "Never Gonna Give You Up"
    assert answers["ReportProgress"]["reportJobProgress"]["job"]["progress"] == 40
    assert answers["CompleteJob"]["completeJob"]["job"] == {"status": "COMPLETED", "progress": 100}

    # The subscriber heard each step of the worker, in order.
    assert [(e["status"], e["progress"], e["message"]) for e in events] == [
        ("PROCESSING", 0, None),
        ("PROCESSING", 40, "Separating vocals"),
        ("COMPLETED", 100, "Separating vocals"),
    ]
    assert {e["id"] for e in events} == {claimed["id"]}
    # So did the Node.js script.
    assert script_events == [
        {key: e[key] for key in ("id", "status", "progress", "message")} for e in events
    ]
