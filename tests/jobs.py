"""Driving jobs through the API as an app and a processing worker do."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from persistence.database import Database
from persistence.models import Job, Song, SongSource
from persistence.repositories import JobRepository
from tests.auth import bearer, issue_token
from tests.conftest import GraphQLClient

JOB_FIELDS = "id status progress message claimedBy leaseExpiresAt createdAt updatedAt"


def result(success: str, job_fields: str = JOB_FIELDS) -> str:
    """The selection of a payload union whose success member is `success`."""
    return f"""
    __typename
    ... on Error {{ message }}
    ... on InvalidJobTransitionError {{ currentStatus }}
    ... on ValidationError {{ field }}
    ... on {success} {{ job {{ {job_fields} }} }}
    """


CREATE_SONG_WITH_JOB = f"""mutation($input: CreateSongInput!) {{
  createSongWithJob(input: $input) {{
    __typename ... on CreateSongWithJobSuccess {{ song {{ id }} job {{ {JOB_FIELDS} }} }}
  }} }}"""
CLAIM = f"""mutation($worker: String) {{
  claimJob(workerId: $worker) {{
    __typename ... on ClaimJobSuccess {{ job {{ {JOB_FIELDS} }} }} ... on Error {{ message }}
  }} }}"""
REPORT = f"""mutation($id: ID!, $worker: String, $progress: Int!, $message: String) {{
  reportJobProgress(jobId: $id, workerId: $worker, progress: $progress, message: $message) {{
    {result("WorkerJobSuccess")} }} }}"""
COMPLETE = f"""mutation($id: ID!, $worker: String) {{
  completeJob(jobId: $id, workerId: $worker) {{ {result("WorkerJobSuccess")} }} }}"""
FAIL = f"""mutation($id: ID!, $worker: String, $message: String!) {{
  failJob(jobId: $id, workerId: $worker, message: $message) {{ {result("WorkerJobSuccess")} }} }}"""
UPDATE = f"""mutation($input: UpdateJobInput!) {{
  updateJob(input: $input) {{ {result("UpdateJobSuccess")} }} }}"""
RETRY = f"""mutation($songId: ID!) {{
  retryJob(songId: $songId) {{ {result("RetryJobSuccess", JOB_FIELDS + " song { id }")} }} }}"""


async def new_song_with_job(gql: GraphQLClient, title: str = "Hello") -> tuple[str, dict[str, Any]]:
    """A new song and its PENDING job, through the API: (song id, job)."""
    data = await gql.data(
        CREATE_SONG_WITH_JOB, input={"title": title, "artist": "Adele", "source": "UPLOAD"}
    )
    result = data["createSongWithJob"]
    assert result["__typename"] == "CreateSongWithJobSuccess"
    return result["song"]["id"], result["job"]


async def claim(gql: GraphQLClient, worker: str | None) -> dict[str, Any] | None:
    """Claim as the named worker (an admin may), or as the caller's own worker token (None)."""
    result = (await gql.data(CLAIM, worker=worker))["claimJob"]
    assert result["__typename"] == "ClaimJobSuccess", result
    job: dict[str, Any] | None = result["job"]
    return job


async def drain_over_http(base_url: str, tokens: list[str]) -> list[list[str]]:
    """A client per worker token, one connection each, claiming at once until no job is
    left; the ids of the jobs each one claimed."""

    async def worker(token: str) -> list[str]:
        claimed: list[str] = []
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=base_url, limits=limits, headers=bearer(token)
        ) as http:
            gql = GraphQLClient(http)
            while (job := await claim(gql, None)) is not None:
                claimed.append(job["id"])
        return claimed

    return list(await asyncio.gather(*(worker(token) for token in tokens)))


async def worker_tokens(database_url: str, count: int) -> list[str]:
    return [await issue_token(database_url, "worker", f"worker-{n}") for n in range(count)]


async def drain_through_repository(claimers: list[Database]) -> list[list[str]]:
    """Each database claims jobs at once with the others, one unit of work per claim,
    until none is left; the ids of the jobs each one claimed."""

    async def claimer(number: int, database: Database) -> list[str]:
        claimed: list[str] = []
        while True:
            async with database.transaction() as session:
                job = await JobRepository(session).claim_next(f"w{number}", timedelta(minutes=5))
            if job is None:
                return claimed
            claimed.append(job.id)

    return list(await asyncio.gather(*(claimer(n, d) for n, d in enumerate(claimers))))


async def report(
    gql: GraphQLClient, job_id: str, worker: str, progress: int, message: str | None = None
) -> dict[str, Any]:
    data = await gql.data(REPORT, id=job_id, worker=worker, progress=progress, message=message)
    result: dict[str, Any] = data["reportJobProgress"]
    return result


async def complete(gql: GraphQLClient, job_id: str, worker: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.data(COMPLETE, id=job_id, worker=worker))["completeJob"]
    return result


async def fail(gql: GraphQLClient, job_id: str, worker: str, message: str) -> dict[str, Any]:
    data = await gql.data(FAIL, id=job_id, worker=worker, message=message)
    result: dict[str, Any] = data["failJob"]
    return result


async def update_job(gql: GraphQLClient, job_id: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.data(UPDATE, input={"id": job_id, **fields}))["updateJob"]
    return result


async def retry(gql: GraphQLClient, song_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.data(RETRY, songId=song_id))["retryJob"]
    return result


async def stored_jobs(db: Database) -> list[dict[str, Any]]:
    """Every job row as the database holds it, oldest first."""
    async with db.session() as session:
        rows = await session.execute(sa.select(Job.__table__).order_by(Job.created_at, Job.id))
        return [dict(row._mapping) for row in rows]


async def add_pending_jobs(db: Database, count: int) -> list[str]:
    """`count` songs, each with one PENDING job, written in one go; the jobs' ids."""
    async with db.transaction() as session:
        songs = [
            Song(title=f"Song {n}", artist="A", source=SongSource.UPLOAD) for n in range(count)
        ]
        session.add_all(songs)
        await session.flush()
        jobs = [Job(song_id=song.id) for song in songs]
        session.add_all(jobs)
        await session.flush()
        return [job.id for job in jobs]
