"""Tracing set up from the standard OTEL_* variables, and off unless an exporter is named.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns tracing on,
exporting over OTLP/HTTP in batches; the SDK reads the rest itself (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`,
`OTEL_EXPORTER_OTLP_HEADERS`...). `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
keeps it off.

Spans: one per HTTP request (OpenTelemetry's ASGI middleware, continuing an incoming W3C
`traceparent`), one per GraphQL operation with its parse, validate and resolver spans
(graph/core/tracing.py), and one per SQL statement (OpenTelemetry's SQLAlchemy engine
tracer, attached to Songbook's engines only, with the statement's text and never its
parameters) inside a request or operation that is sampled: a statement of an unsampled
one, or of none (the replica checks, the job counts), gets no span at all, which spares
every statement the tracer's own work when sampling is off.
opentelemetry-instrumentation-sqlalchemy 0.66b2 declares SQLAlchemy < 2.1; Songbook pins
2.1.9, which its engine tracer serves as it is (tests/test_tracing.py), so the dependency
check it would run on `instrument()` is not involved.
"""

import functools
import os
import weakref
from typing import Any

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import get_current_span, get_tracer
from starlette.middleware import Middleware

from graph.core import tracing
from persistence.database import Database

_traced: "weakref.WeakSet[Any]" = weakref.WeakSet()


class StatementTracer(EngineTracer):
    """OpenTelemetry's engine tracer, for statements whose request or operation is being
    recorded only. It would start a span for every statement, each asking the sampler and
    gathering the connection's attributes, even under a parent that records nothing."""

    def _before_cur_exec(self, conn: Any, cursor: Any, statement: Any, *rest: Any) -> Any:
        if not get_current_span().is_recording():
            return statement, rest[0]
        return super()._before_cur_exec(conn, cursor, statement, *rest)  # type: ignore[no-untyped-call]


def configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@functools.cache
def from_environment() -> TracerProvider | None:
    """The process's tracer provider, made once, when the environment asks for tracing."""
    if not configured():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracing_middleware(db: Database, provider: TracerProvider | None) -> list[Middleware]:
    """Trace requests, operations and `db`'s statements to `provider` (none: no tracing)."""
    tracing.use_provider(provider)
    if provider is None:
        return []
    tracer = get_tracer("opentelemetry.instrumentation.sqlalchemy", tracer_provider=provider)
    usage = NoOpMeterProvider().get_meter("songbook").create_up_down_counter("unused")
    for engine, _ in db.engines():
        if engine.sync_engine not in _traced:
            _traced.add(engine.sync_engine)
            StatementTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]
    return [
        Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=provider,
            excluded_urls="healthz,readyz,metrics",
            # One span for the request: none for each ASGI message it receives or sends.
            exclude_spans=["receive", "send"],
            # Songbook's metrics are Prometheus' (graph/core/metrics.py): the middleware's
            # own HTTP metrics would go nowhere, so they are not even recorded.
            meter_provider=NoOpMeterProvider(),
        )
    ]
