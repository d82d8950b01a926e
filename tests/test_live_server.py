"""`songbook serve` as a new user runs it: a real process that migrates and answers."""

from pathlib import Path

import httpx

from tests.live import live_server


def test_serve_migrates_an_empty_database_and_answers(empty_url: str, tmp_path: Path) -> None:
    with live_server(empty_url, tmp_path) as server:
        response = httpx.post(server.graphql_url, json={"query": "{ songs { totalCount } }"})
        assert response.status_code == 200
        assert response.json() == {"data": {"songs": {"totalCount": 0}}}


def test_graphiql_opens_in_a_browser(empty_url: str, tmp_path: Path) -> None:
    with live_server(empty_url, tmp_path) as server:
        response = httpx.get(server.graphql_url, headers={"Accept": "text/html"})
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
