"""The job lifecycle through the API: PENDING -> PROCESSING -> COMPLETED | FAILED."""

import asyncio
from datetime import datetime
from typing import Any

import pytest

from persistence.database import Database
from tests.conftest import GraphQLClient
from tests.factories import global_id
from tests.jobs import (
    claim,
    complete,
    fail,
    new_song_with_job,
    report,
    retry,
    stored_jobs,
    update_job,
)


@pytest.fixture
def gql(admin_gql: GraphQLClient) -> GraphQLClient:
    """Every call as an admin, who may act for any worker: these tests are about jobs, not
    about roles (tests/test_auth.py is)."""
    return admin_gql


async def job_in(gql: GraphQLClient, status: str) -> str:
    """A job brought to `status` the way workers do it; its id."""
    _, job = await new_song_with_job(gql)
    if status == "PENDING":
        return str(job["id"])
    claimed = await claim(gql, "w1")
    assert claimed is not None and claimed["id"] == job["id"]
    if status == "COMPLETED":
        assert (await complete(gql, job["id"], "w1"))["__typename"] == "WorkerJobSuccess"
    elif status == "FAILED":
        assert (await fail(gql, job["id"], "w1", "boom"))["__typename"] == "WorkerJobSuccess"
    return str(job["id"])


async def test_worker_claims_reports_and_completes(gql: GraphQLClient, db: Database) -> None:
    _, pending = await new_song_with_job(gql)
    assert pending["status"] == "PENDING"
    assert pending["claimedBy"] is None and pending["leaseExpiresAt"] is None

    claimed = await claim(gql, "worker-1")
    assert claimed is not None
    assert claimed["id"] == pending["id"]
    assert claimed["status"] == "PROCESSING"
    assert claimed["claimedBy"] == "worker-1"
    lease = datetime.fromisoformat(claimed["leaseExpiresAt"])
    assert lease > datetime.fromisoformat(claimed["updatedAt"])
    assert await claim(gql, "worker-2") is None  # nothing else is waiting

    reported = await report(gql, pending["id"], "worker-1", 40, "separating vocals")
    assert reported["__typename"] == "WorkerJobSuccess"
    job = reported["job"]
    assert (job["progress"], job["message"]) == (40, "separating vocals")
    assert job["updatedAt"] > claimed["updatedAt"]
    assert datetime.fromisoformat(job["leaseExpiresAt"]) >= lease

    done = await complete(gql, pending["id"], "worker-1")
    assert done["__typename"] == "WorkerJobSuccess"
    assert done["job"]["status"] == "COMPLETED"
    assert done["job"]["progress"] == 100
    assert done["job"]["leaseExpiresAt"] is None
    assert done["job"]["message"] == "separating vocals"
    assert done["job"]["updatedAt"] > job["updatedAt"]

    [row] = await stored_jobs(db)
    assert (row["status"], row["progress"], row["claimed_by"]) == ("completed", 100, "worker-1")


async def test_claims_hand_out_the_oldest_pending_job_first(gql: GraphQLClient) -> None:
    jobs = [(await new_song_with_job(gql, f"Song {n}"))[1]["id"] for n in range(3)]
    claimed = [await claim(gql, f"w{n}") for n in range(4)]
    assert [job["id"] if job else None for job in claimed] == [*jobs, None]


async def test_failed_job_keeps_its_reason_and_progress(gql: GraphQLClient) -> None:
    job_id = await job_in(gql, "PROCESSING")
    await report(gql, job_id, "w1", 30)
    failed = await fail(gql, job_id, "w1", "  corrupt audio  ")
    assert failed["__typename"] == "WorkerJobSuccess"
    assert failed["job"]["status"] == "FAILED"
    assert failed["job"]["message"] == "corrupt audio"
    assert failed["job"]["progress"] == 30


ILLEGAL = [
    ("PENDING", "COMPLETED"),
    ("PENDING", "FAILED"),
    ("PROCESSING", "PENDING"),
    ("COMPLETED", "PENDING"),
    ("COMPLETED", "PROCESSING"),
    ("COMPLETED", "FAILED"),
    ("COMPLETED", "COMPLETED"),
    ("FAILED", "PENDING"),
    ("FAILED", "PROCESSING"),
    ("FAILED", "COMPLETED"),
    ("FAILED", "FAILED"),
]


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
async def test_update_job_refuses_transitions_outside_the_lifecycle(
    gql: GraphQLClient, db: Database, current: str, target: str
) -> None:
    job_id = await job_in(gql, current)
    before = await stored_jobs(db)

    result = await update_job(gql, job_id, status=target, message="changed")

    assert result["__typename"] == "InvalidJobTransitionError"
    assert result["currentStatus"] == current
    assert current in result["message"]
    assert await stored_jobs(db) == before


@pytest.mark.parametrize("final", ["COMPLETED", "FAILED"])
async def test_a_final_job_changes_no_more(gql: GraphQLClient, db: Database, final: str) -> None:
    job_id = await job_in(gql, final)
    before = await stored_jobs(db)

    attempts: list[dict[str, Any]] = [
        await update_job(gql, job_id, progress=100),
        await update_job(gql, job_id, message="again"),
        await report(gql, job_id, "w1", 100),
        await complete(gql, job_id, "w1"),
        await fail(gql, job_id, "w1", "again"),
    ]

    assert [a["__typename"] for a in attempts] == ["InvalidJobTransitionError"] * 5
    assert {a["currentStatus"] for a in attempts} == {final}
    assert await stored_jobs(db) == before


async def test_update_job_follows_the_lifecycle(gql: GraphQLClient, db: Database) -> None:
    _, job = await new_song_with_job(gql)
    started = await update_job(gql, job["id"], status="PROCESSING", progress=10)
    assert started["__typename"] == "UpdateJobSuccess"
    assert started["job"]["status"] == "PROCESSING"
    # Moved by hand, the job still has a lease, so it cannot be stranded.
    assert started["job"]["leaseExpiresAt"] is not None
    assert started["job"]["updatedAt"] > job["updatedAt"]

    lower = await update_job(gql, job["id"], progress=5)
    assert (lower["__typename"], lower["field"]) == ("ValidationError", "progress")

    done = await update_job(gql, job["id"], status="COMPLETED")
    assert done["__typename"] == "UpdateJobSuccess"
    assert (done["job"]["status"], done["job"]["progress"]) == ("COMPLETED", 100)
    assert done["job"]["leaseExpiresAt"] is None


async def test_progress_stays_in_range_and_never_goes_down(
    gql: GraphQLClient, db: Database
) -> None:
    job_id = await job_in(gql, "PROCESSING")
    assert (await report(gql, job_id, "w1", 50))["__typename"] == "WorkerJobSuccess"
    assert (await report(gql, job_id, "w1", 50, "same"))["__typename"] == "WorkerJobSuccess"
    before = await stored_jobs(db)

    for progress in (49, 101, -1):
        result = await report(gql, job_id, "w1", progress, "ignored")
        assert (result["__typename"], result["field"]) == ("ValidationError", "progress")
    assert await stored_jobs(db) == before

    pending_id = await job_in(gql, "PENDING")
    result = await update_job(gql, pending_id, progress=20)
    assert (result["__typename"], result["field"]) == ("ValidationError", "progress")


async def test_only_the_claim_holder_may_report(gql: GraphQLClient, db: Database) -> None:
    job_id = await job_in(gql, "PROCESSING")  # held by w1
    pending_id = await job_in(gql, "PENDING")
    before = await stored_jobs(db)

    refused = [
        await report(gql, job_id, "intruder", 60),
        await complete(gql, job_id, "intruder"),
        await fail(gql, job_id, "intruder", "no"),
        await report(gql, pending_id, "w1", 10),  # nobody holds a pending job
        await complete(gql, pending_id, "w1"),
    ]

    assert [r["__typename"] for r in refused] == ["ClaimNotHeldError"] * 5
    assert "intruder" in refused[0]["message"]
    assert await stored_jobs(db) == before


async def test_worker_arguments_are_checked(gql: GraphQLClient) -> None:
    job_id = await job_in(gql, "PROCESSING")
    song_id = global_id("Song", "01900000-0000-7000-8000-000000000000")
    missing = global_id("Job", "01900000-0000-7000-8000-000000000000")

    # A malformed id is BAD_USER_INPUT (test_bad_input checks every entry point).
    assert (await report(gql, song_id, "w1", 1))["__typename"] == "NotFoundError"
    assert (await report(gql, missing, "w1", 1))["__typename"] == "NotFoundError"
    assert (await report(gql, job_id, "  ", 1))["field"] == "workerId"
    assert (await fail(gql, job_id, "w1", " "))["field"] == "message"
    result = (await gql.data('mutation { claimJob(workerId: "") { __typename } }'))["claimJob"]
    assert result["__typename"] == "ValidationError"


async def test_retry_queues_a_new_pending_job_and_keeps_history(
    gql: GraphQLClient, db: Database
) -> None:
    song_id, job = await new_song_with_job(gql)
    refused = await retry(gql, song_id)
    assert (refused["__typename"], refused["currentStatus"]) == (
        "InvalidJobTransitionError",
        "PENDING",
    )
    await claim(gql, "w1")
    await fail(gql, job["id"], "w1", "boom")

    retried = await retry(gql, song_id)
    assert retried["__typename"] == "RetryJobSuccess"
    assert retried["job"]["status"] == "PENDING"
    assert retried["job"]["id"] != job["id"]
    assert retried["job"]["song"]["id"] == song_id

    history = await gql.data(
        "query($id: ID!) { song(id: $id) { latestJob { id } jobs { edges { node { status } } } } }",
        id=song_id,
    )
    assert history["song"]["latestJob"]["id"] == retried["job"]["id"]
    assert [e["node"]["status"] for e in history["song"]["jobs"]["edges"]] == [
        "PENDING",
        "FAILED",
    ]
    unknown = global_id("Song", "01900000-0000-7000-8000-000000000000")
    assert (await retry(gql, unknown))["__typename"] == "NotFoundError"


async def test_concurrent_retries_queue_one_job(gql: GraphQLClient, db: Database) -> None:
    song_id, job = await new_song_with_job(gql)
    await claim(gql, "w1")
    await fail(gql, job["id"], "w1", "boom")

    results = await asyncio.gather(*(retry(gql, song_id) for _ in range(8)))

    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["InvalidJobTransitionError"] * 7 + ["RetryJobSuccess"]
    assert [row["status"] for row in await stored_jobs(db)] == ["failed", "pending"]
