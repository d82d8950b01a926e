"""OpenTelemetry spans, collected with the SDK's in-memory exporter: a request's HTTP span
continues the caller's W3C traceparent, and the operation's span and its statements' spans
sit under it, on both executors, with no value of a variable or argument anywhere; the
request's log line carries the same trace id."""

import logging
from collections.abc import Iterator, Sequence

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from graph.core import tracing
from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from tests.factories import add_songs

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
# A search term (an argument value) that matches the songs, and must appear in no span.
SECRET = "ong 00"


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    tracing.use_provider(None)


def attribute_values(spans: Sequence[ReadableSpan]) -> str:
    return " ".join(f"{k}={v!r}" for span in spans for k, v in (span.attributes or {}).items())


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "strawberry"])
async def test_a_request_is_one_trace_from_http_to_sql(
    compiled: bool,
    db: Database,
    exported: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = exported
    await add_songs(db, 3, jobs_per_song=1)
    app = create_app(Settings(compiled=compiled), db=db, tracer_provider=provider)
    query = f'query Find {{ songs(search: "{SECRET}", first: 2) {{ edges {{ node {{ title latestJob {{ id }} }} }} }} }}'
    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.INFO, logger="songbook.requests"):
        async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as http:
            response = await http.post(
                "/graphql", json={"query": query}, headers={"traceparent": TRACEPARENT}
            )
    assert response.status_code == 200 and "errors" not in response.json()
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {TRACE_ID}
    names = [span.name for span in spans]
    operation = next(s for s in spans if s.name == "GraphQL query Find")
    statements = [
        s
        for s in spans
        if (s.attributes or {}).get("db.statement") or (s.attributes or {}).get("db.query.text")
    ]
    assert len(statements) >= 2, names
    by_id = {s.context.span_id: s for s in spans}

    def ancestors(span: ReadableSpan) -> Iterator[ReadableSpan]:
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    assert all(operation in ancestors(s) for s in statements), names
    http_span = next(
        s
        for s in spans
        if (s.attributes or {}).get("http.method") == "POST"
        or (s.attributes or {}).get("http.request.method") == "POST"
    )
    assert http_span in ancestors(operation)
    if not compiled:
        assert any(name == "GraphQL Parsing" for name in names)
        assert any(name.startswith("GraphQL Resolving") for name in names)
    assert SECRET not in attribute_values(spans)
    (line,) = [r for r in caplog.records if r.name == "songbook.requests"]
    assert vars(line)["trace_id"] == TRACE_ID


async def test_without_a_provider_nothing_is_traced(db: Database) -> None:
    app = create_app(Settings(), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as http:
        response = await http.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert tracing.provider() is None


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "strawberry"])
async def test_an_unsampled_request_records_no_span_but_keeps_its_trace_id(
    compiled: bool,
    db: Database,
    exported: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The caller decided not to sample (traceparent flags 00), and the default sampler
    follows its parent: no span at all, neither the operation's nor a statement's, and
    the log line still names the trace."""
    provider, exporter = exported
    await add_songs(db, 2, jobs_per_song=1)
    app = create_app(Settings(compiled=compiled), db=db, tracer_provider=provider)
    unsampled = TRACEPARENT[:-2] + "00"
    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.INFO, logger="songbook.requests"):
        async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as http:
            response = await http.post(
                "/graphql",
                json={
                    "query": "query Few { songs(first: 2) { edges { node { title latestJob { id } } } } }"
                },
                headers={"traceparent": unsampled},
            )
    assert response.status_code == 200 and "errors" not in response.json()
    assert exporter.get_finished_spans() == ()
    (line,) = [r for r in caplog.records if r.name == "songbook.requests"]
    assert line.trace_id == TRACE_ID  # type: ignore[attr-defined]
