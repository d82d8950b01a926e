"""Workers claiming jobs: each job to exactly one worker, and back to the queue when the
worker's lease lapses."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from persistence.database import Database
from persistence.models import JobStatus
from persistence.settings import DatabaseSettings
from tests.auth import bearer, issue_token
from tests.conftest import GraphQLClient
from tests.factories import global_id
from tests.jobs import (
    add_pending_jobs,
    claim,
    complete,
    drain_over_http,
    drain_through_repository,
    new_song_with_job,
    report,
    stored_jobs,
    worker_tokens,
)
from tests.live import live_server

CLAIMERS = 20
JOBS = 1000


async def test_twenty_claimers_drain_a_thousand_jobs_exactly_once(
    db: Database, migrated_url: str
) -> None:
    job_ids = await add_pending_jobs(db, JOBS)
    # Twenty engines, so twenty connections that really run at once. SQLite's busy
    # handler is not fair: twenty engines polling for its one write lock can starve one
    # past the default timeout (a server queues its own writers; see Database).
    settings = DatabaseSettings(
        url=migrated_url, pool_size=1, max_overflow=0, sqlite_busy_timeout_ms=120_000
    )
    claimers = [Database(settings) for _ in range(CLAIMERS)]
    try:
        claims = await drain_through_repository(claimers)
    finally:
        await asyncio.gather(*(d.dispose() for d in claimers))

    claimed = [job_id for batch in claims for job_id in batch]
    assert len(claimed) == JOBS
    assert set(claimed) == set(job_ids)
    assert sum(1 for batch in claims if batch) > 1, "the claims never overlapped"
    holder = {job_id: f"w{n}" for n, batch in enumerate(claims) for job_id in batch}
    for row in await stored_jobs(db):
        assert row["status"] == JobStatus.PROCESSING
        assert row["claimed_by"] == holder[row["id"]]


async def test_claims_over_http_to_a_live_server_are_exactly_once(
    empty_url: str, tmp_path: Path
) -> None:
    # Several server processes share a database only on PostgreSQL (serve refuses SQLite).
    processes = 1 if empty_url.startswith("sqlite") else 2
    with live_server(empty_url, tmp_path, workers=processes) as server:
        db = Database(DatabaseSettings(url=empty_url))
        try:
            job_ids = await add_pending_jobs(db, JOBS)
            claims = await drain_over_http(server.url, await worker_tokens(empty_url, CLAIMERS))
            rows = await stored_jobs(db)
        finally:
            await db.dispose()

    claimed = [global_id("Job", job_id) for job_id in job_ids]
    sent = [job_id for batch in claims for job_id in batch]
    assert len(sent) == JOBS
    assert set(sent) == set(claimed)
    assert sum(1 for batch in claims if batch) > 1
    assert {row["status"] for row in rows} == {JobStatus.PROCESSING}


@asynccontextmanager
async def live_client(url: str, tmp_path: Path, **env: str) -> AsyncIterator[GraphQLClient]:
    """A client of a live server with an admin's token, acting for the workers it names."""
    with live_server(url, tmp_path, env=env) as server:
        headers = bearer(await issue_token(url, "admin"))
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            yield GraphQLClient(http)


async def wait_until_lapsed(job: dict[str, str]) -> None:
    from datetime import UTC, datetime

    lease = datetime.fromisoformat(job["leaseExpiresAt"])
    await asyncio.sleep(max(0.0, (lease - datetime.now(UTC)).total_seconds()) + 0.05)


async def test_a_lapsed_lease_lets_another_worker_take_over(empty_url: str, tmp_path: Path) -> None:
    async with live_client(empty_url, tmp_path, SONGBOOK_JOB_LEASE_SECONDS="1") as gql:
        _, job = await new_song_with_job(gql)
        first = await claim(gql, "crashing-worker")
        assert first is not None and first["id"] == job["id"]
        assert (await report(gql, job["id"], "crashing-worker", 30))["__typename"] == (
            "WorkerJobSuccess"
        )
        started = time.monotonic()
        # While the lease holds, nobody else gets the job.
        assert await claim(gql, "second-worker") is None

        held = (await report(gql, job["id"], "crashing-worker", 30))["job"]
        await wait_until_lapsed(held)
        assert time.monotonic() - started >= 0.9
        second = await claim(gql, "second-worker")
        assert second is not None
        assert second["id"] == job["id"]
        assert second["claimedBy"] == "second-worker"
        # The new worker starts the job over.
        assert (second["status"], second["progress"]) == ("PROCESSING", 0)

        late = await report(gql, job["id"], "crashing-worker", 90)
        assert late["__typename"] == "ClaimNotHeldError"
        assert (await complete(gql, job["id"], "crashing-worker"))["__typename"] == (
            "ClaimNotHeldError"
        )

        assert (await report(gql, job["id"], "second-worker", 50))["__typename"] == (
            "WorkerJobSuccess"
        )
        done = await complete(gql, job["id"], "second-worker")
        assert done["__typename"] == "WorkerJobSuccess"
        assert (done["job"]["status"], done["job"]["claimedBy"]) == ("COMPLETED", "second-worker")


async def test_a_late_holder_keeps_its_job_while_nobody_else_took_it(
    empty_url: str, tmp_path: Path
) -> None:
    async with live_client(empty_url, tmp_path, SONGBOOK_JOB_LEASE_SECONDS="0.5") as gql:
        _, job = await new_song_with_job(gql)
        claimed = await claim(gql, "slow-worker")
        assert claimed is not None
        await wait_until_lapsed(claimed)

        late = await report(gql, job["id"], "slow-worker", 10)

        assert late["__typename"] == "WorkerJobSuccess"
        assert late["job"]["leaseExpiresAt"] > claimed["leaseExpiresAt"]
        assert await claim(gql, "other-worker") is None
