"""What Songbook counts for Prometheus: requests, errors, statements, pools, sockets, jobs.

The families live in prometheus_client's default registry, one set per process. Under
`songbook serve --workers N` the server sets PROMETHEUS_MULTIPROC_DIR before the workers
start, so each worker writes its samples to that directory and `/metrics` (in whichever
worker answers) sums them: every process is counted once. Gauges say how they combine
across processes (`multiprocess_mode`).

What happened in one request is gathered in its `RequestRecord` (on the Context) by the
path that ran it, and counted once, by the view, when the response is ready.
"""

import re
import threading
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

# Seconds: from a cached page (a few ms) to the request timeout's neighbourhood.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATEMENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

REQUESTS = Counter(
    "songbook_graphql_requests",
    "GraphQL requests over HTTP, by operation and outcome (success, error, rejected).",
    ["operation_name", "operation_type", "outcome"],
)
REQUEST_DURATION = Histogram(
    "songbook_graphql_request_duration_seconds",
    "Time to answer a GraphQL request over HTTP, by operation.",
    ["operation_name", "operation_type"],
    buckets=DURATION_BUCKETS,
)
ERRORS = Counter(
    "songbook_graphql_errors",
    "Errors in GraphQL responses, by extensions.code.",
    ["code"],
)
STATEMENT_DURATION = Histogram(
    "songbook_db_statement_duration_seconds",
    "Time the database took to answer a statement, by kind and by the server's role.",
    ["kind", "role"],
    buckets=STATEMENT_BUCKETS,
)
POOL_CONNECTIONS = Gauge(
    "songbook_db_pool_connections",
    "Pooled PostgreSQL connections: in use, idle, and in use beyond the pool's size.",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_CHECKOUTS = Counter(
    "songbook_db_pool_checkouts",
    "Connections taken from the pool.",
)
POOL_WAIT = Histogram(
    "songbook_db_pool_wait_seconds",
    "Time a checkout waited for a pooled connection, connecting included.",
    buckets=STATEMENT_BUCKETS,
)
SUBSCRIPTIONS = Gauge(
    "songbook_subscriptions_active",
    "Subscriptions being served.",
    multiprocess_mode="livesum",
)
WEBSOCKETS = Gauge(
    "songbook_websocket_connections_active",
    "WebSocket connections open.",
    multiprocess_mode="livesum",
)
JOBS = Gauge(
    "songbook_jobs",
    "Processing jobs by status (counted at most every few seconds).",
    ["status"],
    multiprocess_mode="mostrecent",
)
REPLICA_LAG = Gauge(
    "songbook_db_replica_lag_seconds",
    "How far each read replica is behind the primary, as last checked.",
    ["replica"],
    multiprocess_mode="mostrecent",
)
REPLICA_IN_USE = Gauge(
    "songbook_db_replica_in_use",
    "1 while queries read from the replica, 0 while it is skipped (down or lagging).",
    ["replica"],
    multiprocess_mode="mostrecent",
)

ANONYMOUS = "anonymous"
OTHER = "other"
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")


@dataclass
class RequestRecord:
    """What one request did, as the path that ran it saw it."""

    operation_name: str | None = None
    operation_type: str | None = None
    document_hash: str | None = None
    error_codes: list[str] = field(default_factory=list)


class OperationNames:
    """Operation names as metric labels, their number bounded: the first `limit` distinct
    names are kept, later ones fold into `other` (clients choose names, and each label
    value is a time series to keep)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return ANONYMOUS
        if not _NAME.match(name):
            return OTHER
        if name in self._seen:
            return name
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(name)
        return name


def statement_kind(statement: str) -> str:
    """select, insert, update, delete or other, from a statement's first word."""
    word = statement.lstrip(" (\n\t").split(None, 1)[0].lower() if statement.strip() else ""
    if word == "with":  # a CTE: what it does comes later; counted by its main verb
        for verb in ("insert", "update", "delete"):
            if re.search(rf"\b{verb}\b", statement, re.IGNORECASE):
                return verb
        return "select"
    return word if word in ("select", "insert", "update", "delete") else "other"
