"""OpenTelemetry spans for GraphQL operations, on both executors.

The tracer provider is the process's (graph/server/tracing.py sets it up from the standard
OTEL_* variables, or leaves tracing off). Strawberry's path gets Strawberry's tracing
extension, with its spans named after the operation and without any value: no document
text (literals in it may be secrets) and no argument. The compiled read path opens the
same operation span itself, with one child for its statements' execution.
"""

import contextlib
from collections.abc import Generator, Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider
from strawberry.extensions import SchemaExtension
from strawberry.extensions.base_extension import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Trace operations to `provider` from now on (None: no tracing)."""
    global _provider, _tracer
    _provider = provider
    _tracer = None if provider is None else trace.get_tracer("songbook", tracer_provider=provider)


def provider() -> TracerProvider | None:
    return _provider


def operation_span_name(operation_type: str | None, name: str | None) -> str:
    return f"GraphQL {operation_type or 'operation'} {name or 'anonymous'}"


class OperationSpans(OpenTelemetryExtension):
    """Strawberry's tracing extension: parse, validate and resolver spans under one span
    per operation, which here records the operation's name and type but not its document,
    and resolver spans without arguments."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        super().__init__(arg_filter=lambda args, info: {}, tracer_provider=tracer_provider)

    def on_operation(self) -> Generator[None, None, None]:
        span = self._tracer.start_span("GraphQL operation", kind=SpanKind.SERVER)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            context = self.execution_context
            with contextlib.suppress(Exception):  # no operation found: the name stays
                kind = context.operation_type.value
                span.update_name(operation_span_name(kind, context.operation_name))
                span.set_attribute("graphql.operation.type", kind)
                if context.operation_name:
                    span.set_attribute("graphql.operation.name", context.operation_name)
            span.end()


class _Untraced(SchemaExtension):
    """Stands in for OperationSpans while tracing is off."""


def _unsampled() -> bool:
    """Whether the operation runs inside a span (its HTTP request's) that records nothing:
    every standard sampler would leave its children unrecorded too, so none is started."""
    parent = trace.get_current_span()
    return parent.get_span_context().is_valid and not parent.is_recording()


def operation_spans() -> SchemaExtension:
    """The tracing extension for one operation, when tracing is on and it is sampled."""
    return _Untraced() if _provider is None or _unsampled() else OperationSpans(_provider)


@contextlib.contextmanager
def compiled_operation_span(name: str | None) -> Iterator[Any]:
    """The compiled read path's operation span, with its execution span inside."""
    tracer = _tracer
    if tracer is None or _unsampled():
        yield None
        return
    with tracer.start_as_current_span(
        operation_span_name("query", name), kind=SpanKind.SERVER
    ) as span:
        span.set_attribute("component", "graphql")
        span.set_attribute("graphql.operation.type", "query")
        if name:
            span.set_attribute("graphql.operation.name", name)
        with tracer.start_as_current_span("GraphQL execution (compiled)"):
            yield span


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
