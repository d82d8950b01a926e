"""Probes: /healthz (liveness) answers while the process runs; /readyz (readiness) only
when the database answers and its schema is the one this code expects, and it lists how
each read replica is doing."""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from graph.server.deadlines import within
from persistence.database import Database
from persistence.errors import DatabaseTimeout, DatabaseUnavailable
from persistence.migrate import head_revision, schema_revisions

# Seconds /readyz waits for the database before it says it is not answering.
READY_TIMEOUT = 3.0


async def liveness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


class Readiness:
    """/readyz: 200 when the database answers and is at the newest migration, else 503
    with a short reason. Answers within READY_TIMEOUT even when the database hangs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.head = head_revision()

    async def reason_not_ready(self) -> str | None:
        try:
            revisions = await within(READY_TIMEOUT, schema_revisions(self.db))
        except (TimeoutError, DatabaseTimeout):
            return "database not answering"
        except DatabaseUnavailable:
            return "database unreachable"
        if revisions != {self.head}:
            return "schema not at the newest migration"
        return None

    async def endpoint(self, request: Request) -> JSONResponse:
        reason = await self.reason_not_ready()
        # A probe's answer is of this moment only.
        headers = {"cache-control": "no-store"}
        body: dict[str, Any] = (
            {"status": "ready"} if reason is None else {"status": "unavailable", "reason": reason}
        )
        if self.db.replicas:
            # Queries fall back to the primary: a replica's state never makes this not ready.
            body["replicas"] = self.db.replicas.status()
        return JSONResponse(body, status_code=200 if reason is None else 503, headers=headers)
