"""Prometheus metrics at /metrics, read with prometheus_client's own text parser: each
family moves when the thing it counts happens."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graph.core.identity import Role
from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from tests.auth import bearer, issue_token
from tests.benchmarks.ceiling import LIBRARY
from tests.factories import add_songs
from tests.live import live_server
from tests.ws import graphql_socket

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    return sum(
        v for (n, have), v in samples.items() if n == name and set(labels.items()) <= set(have)
    )


async def scrape(http: httpx.AsyncClient, **options: object) -> Samples:
    response = await http.get("/metrics", **options)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.fixture
async def http(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(metrics_max_operations=3), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as c:
        yield c


async def test_requests_errors_statements_and_the_pool_are_counted(
    http: httpx.AsyncClient, db: Database
) -> None:
    await add_songs(db, 3, jobs_per_song=1)
    before = await scrape(http)
    page = {"query": LIBRARY, "variables": {"first": 2}}
    assert (await http.post("/graphql", json=page)).status_code == 200
    bad = {"query": '{ songs(after: "nope") { totalCount } }'}
    assert (await http.post("/graphql", json=bad)).status_code == 200
    assert (await http.post("/graphql", content=b"{", headers={"content-type": "application/json"})).status_code == 400  # fmt: skip
    after = await scrape(http)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    success = {"operation_name": "Library", "operation_type": "query", "outcome": "success"}
    assert moved("songbook_graphql_requests_total", **success) == 1
    assert moved("songbook_graphql_request_duration_seconds_count", operation_name="Library") == 1
    error = {"operation_name": "anonymous", "operation_type": "query", "outcome": "error"}
    assert moved("songbook_graphql_requests_total", **error) == 1
    assert moved("songbook_graphql_requests_total", outcome="rejected") == 1
    assert moved("songbook_graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert moved("songbook_graphql_errors_total", code="BAD_REQUEST") == 1
    assert moved("songbook_db_statement_duration_seconds_count", kind="select", role="primary") >= 2
    assert moved("songbook_db_pool_checkouts_total") >= 2
    assert moved("songbook_db_pool_wait_seconds_count") >= 2
    states = {v for (n, labels), v in after.items() if n == "songbook_db_pool_connections"}
    assert states, "the pool's gauges are there"
    assert (
        value(after, "songbook_jobs", status="COMPLETED")
        + value(after, "songbook_jobs", status="FAILED")
        + value(after, "songbook_jobs", status="PENDING")
        + value(after, "songbook_jobs", status="PROCESSING")
        == 3
    )


async def test_operation_names_are_bounded(http: httpx.AsyncClient) -> None:
    # The app keeps 3 names; a fourth and a name no query could have fold into `other`.
    for name in ("One", "Two", "Three", "Four"):
        document = {"query": f"query {name} {{ __typename }}"}
        assert (await http.post("/graphql", json=document)).status_code == 200
    samples = await scrape(http)
    names = {
        dict(labels)["operation_name"]
        for (n, labels), _ in samples.items()
        if n == "songbook_graphql_requests_total"
    }
    assert {"One", "Two", "Three", "other"} <= names and "Four" not in names


async def test_production_asks_for_an_admin(db: Database) -> None:
    production = Settings(environment="production", anonymous=Role.READER)
    app = create_app(production, db=db)
    admin = bearer(await issue_token(db, "admin", name="metrics-admin"))
    reader = bearer(await issue_token(db, "reader", name="metrics-reader"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=reader)).status_code == 403
        await scrape(http, headers=admin)
    public = create_app(production.model_copy(update={"metrics_public": True}), db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=public), base_url="http://songbook.test"
    ) as http:
        await scrape(http)
    off = create_app(Settings(metrics=False), db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=off), base_url="http://songbook.test"
    ) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_sockets_and_subscriptions_are_gauged(migrated_url: str, tmp_path: Path) -> None:
    with live_server(migrated_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            idle = await scrape(http)
            async with graphql_socket(server.ws_url) as socket:
                await socket.subscribe("subscription { jobUpdated { id } }")
                await asyncio.sleep(0.3)
                busy = await scrape(http)
            await asyncio.sleep(0.3)
            after = await scrape(http)
    for name in ("songbook_websocket_connections_active", "songbook_subscriptions_active"):
        assert total(busy, name) == total(idle, name) + 1, name
        assert total(after, name) == total(idle, name), name


async def test_every_worker_is_counted_once(migrated_url: str, tmp_path: Path) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("several server processes share a database only on PostgreSQL")
    with live_server(migrated_url, tmp_path, workers=2) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            for _ in range(20):
                response = await http.post("/graphql", json={"query": "query Ping { __typename }"})
                assert response.status_code == 200
            # Whichever worker answers the scrape sums both.
            for _ in range(4):
                samples = await scrape(http)
                assert (
                    total(samples, "songbook_graphql_requests_total", operation_name="Ping") == 20
                )
