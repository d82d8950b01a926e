"""The README's examples, as a new user meets them: each GraphQL block validates against the
schema and runs, in the README's order, against a real `songbook serve`."""

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, build_schema, parse, validate

from tests.live import live_server
from tests.ws import graphql_socket

ROOT = Path(__file__).resolve().parent.parent
GRAPHQL_BLOCK = re.compile(r"^```graphql\n(.*?)^```", re.MULTILINE | re.DOTALL)


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
        async with (
            httpx.AsyncClient(base_url=server.url) as http,
            graphql_socket(server.ws_url) as socket,
        ):
            for kind, name, document, variable_names in readme_operations():
                variables = {variable: known[variable] for variable in variable_names}
                if kind == "subscription":
                    await socket.subscribe(document, **variables)
                    await asyncio.sleep(0.5)  # let the server register the subscription
                    continue
                response = await http.post(
                    "/graphql", json={"query": document, "variables": variables}
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
