"""`songbook serve` as a new user runs it: a real process that migrates and answers."""

from pathlib import Path

import httpx

from persistence.migrate import downgrade, upgrade
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


def test_readiness_needs_the_database_at_the_newest_migration(
    empty_url: str, tmp_path: Path
) -> None:
    with live_server(empty_url, tmp_path) as server:
        ready = httpx.get(f"{server.url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        assert ready.headers["cache-control"] == "no-store"
        # Another deployment's `songbook migrate` went back a revision under this server.
        downgrade(empty_url, "-1")
        behind = httpx.get(f"{server.url}/readyz")
        assert (behind.status_code, behind.json()) == (
            503,
            {"status": "unavailable", "reason": "schema not at the newest migration"},
        )
        # Liveness is the process's own: it answers all the same.
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        upgrade(empty_url)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
