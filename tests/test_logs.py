"""Logs an operator can read: in JSON every line is one object, each request has one
line with what happened (never a variable's value or a token), and slow statements are
logged with their SQL, never their values."""

import json
from pathlib import Path
from typing import Any

import httpx

from tests.auth import bearer, issue_token
from tests.live import live_server

SECRET = "s3cret-variable-value"
SEARCH = "query Find($search: String) { songs(search: $search, first: 2) { totalCount } }"


def lines(log: str) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be a JSON object."""
    parsed = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


async def test_json_logs_a_line_per_request(migrated_url: str, tmp_path: Path) -> None:
    token = await issue_token(migrated_url, "reader", name="log-reader")
    env = {"SONGBOOK_LOG_FORMAT": "json", "SONGBOOK_SLOW_STATEMENT_MS": "0.001"}
    with live_server(migrated_url, tmp_path, env, log_level="info") as server:
        async with httpx.AsyncClient(base_url=server.url, headers=bearer(token)) as http:
            client = {
                "apollographql-client-name": "web",
                "apollographql-client-version": "1.2.3",
            }
            ok = await http.post(
                "/graphql", json={"query": SEARCH, "variables": {"search": SECRET}}, headers=client
            )
            assert ok.status_code == 200 and "errors" not in ok.json()
            bad = await http.post(
                "/graphql", json={"query": '{ songs(after: "x") { totalCount } }'}
            )
            assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            refused = await http.post(
                "/graphql", json={"query": "{"}, headers={"Authorization": "Bearer nope-token"}
            )
            assert refused.status_code == 401
        log = server.log()
    assert SECRET not in log and token not in log and "nope-token" not in log
    entries = lines(log)
    requests = [e for e in entries if e["logger"] == "songbook.requests"]
    assert len(requests) == 3, requests
    found, failed, unauthenticated = requests
    assert found["operation_name"] == "Find" and found["operation_type"] == "query"
    assert found["status"] == 200 and found["error_codes"] == []
    assert found["client_name"] == "web" and found["client_version"] == "1.2.3"
    assert len(found["document_hash"]) == 64 and found["duration_ms"] > 0
    assert "trace_id" in found and found["trace_id"] is None
    assert failed["operation_name"] is None and failed["error_codes"] == ["BAD_USER_INPUT"]
    assert unauthenticated["status"] == 401
    assert unauthenticated["error_codes"] == ["UNAUTHENTICATED"]
    slow = [e for e in entries if e["logger"] == "songbook.sql"]
    assert slow and all(e["duration_ms"] >= 0 for e in slow)
    searched = [e for e in slow if "LIKE" in e["statement"].upper()]
    assert searched, slow  # the search's statement, its pattern a placeholder
    assert all(key in entry for entry in entries for key in ("time", "level", "logger", "message"))


async def test_text_logs_stay_plain(migrated_url: str, tmp_path: Path) -> None:
    with live_server(
        migrated_url, tmp_path, {"SONGBOOK_LOG_FORMAT": "text"}, log_level="info"
    ) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (
                await http.post("/graphql", json={"query": "query Hello { __typename }"})
            ).status_code == 200
        log = server.log()
    assert "query Hello 200" in log
    assert not any(line.startswith("{") for line in log.splitlines())
