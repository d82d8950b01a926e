"""Live job updates: `jobUpdated` over WebSocket, published only after commit, to every
server process on the database, without a slow subscriber holding up the others."""

import asyncio
import random
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.errors import Conflict, ValidationError
from persistence.events import JobEvent, JobEvents
from persistence.models import SongSource
from persistence.repositories import JobRepository, SongRepository
from tests.auth import bearer, issue_token
from tests.conftest import GraphQLClient
from tests.factories import add_song, global_id
from tests.jobs import claim, complete, new_song_with_job, report
from tests.live import LiveServer, live_server
from tests.ws import LEGACY_WS, TRANSPORT_WS, eventually, graphql_socket, serve_in_process

JOB_UPDATED = """subscription($jobId: ID, $songId: ID) {
  jobUpdated(jobId: $jobId, songId: $songId) {
    id status progress message claimedBy song { id title }
  } }"""
RENAME = """mutation($id: ID!, $title: String!) {
  updateSong(input: {id: $id, title: $title}) { __typename } }"""


@asynccontextmanager
async def http_client(server: LiveServer, url: str) -> AsyncIterator[GraphQLClient]:
    """A client of a live server on the database `url`, with an admin's token (acting for
    the workers it names)."""
    headers = bearer(await issue_token(url, "admin"))
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        yield GraphQLClient(http)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscriber_sees_every_committed_change(
    empty_url: str, tmp_path: Path, protocol: str
) -> None:
    with live_server(empty_url, tmp_path) as server:
        async with (
            http_client(server, empty_url) as gql,
            graphql_socket(server.ws_url, protocol) as ws,
        ):
            await ws.subscribe(JOB_UPDATED)
            await asyncio.sleep(0.2)  # let the server register the subscription
            song_id, job = await new_song_with_job(gql, "Hello")

            created = (await ws.next_data())["jobUpdated"]
            assert created["id"] == job["id"]
            assert created["status"] == "PENDING"
            assert created["song"] == {"id": song_id, "title": "Hello"}

            # The connection lives on; the next event must show the song as it is now.
            await gql.data(RENAME, id=song_id, title="Hello, again")
            await claim(gql, "w1")
            claimed = (await ws.next_data())["jobUpdated"]
            assert (claimed["status"], claimed["claimedBy"]) == ("PROCESSING", "w1")
            assert claimed["song"]["title"] == "Hello, again"

            await report(gql, job["id"], "w1", 40, "separating vocals")
            reported = (await ws.next_data())["jobUpdated"]
            assert (reported["progress"], reported["message"]) == (40, "separating vocals")

            await complete(gql, job["id"], "w1")
            completed = (await ws.next_data())["jobUpdated"]
            assert (completed["status"], completed["progress"]) == ("COMPLETED", 100)

            # A refused change changes nothing, so announces nothing.
            await report(gql, job["id"], "w1", 100)
            await ws.expect_silence(0.5)


async def test_subscriptions_follow_one_job_or_one_song(empty_url: str, tmp_path: Path) -> None:
    with live_server(empty_url, tmp_path) as server:
        async with http_client(server, empty_url) as gql:
            first_song, first_job = await new_song_with_job(gql, "First")
            second_song, second_job = await new_song_with_job(gql, "Second")
            async with (
                graphql_socket(server.ws_url) as by_job,
                graphql_socket(server.ws_url) as by_song,
                graphql_socket(server.ws_url) as everything,
            ):
                await by_job.subscribe(JOB_UPDATED, jobId=first_job["id"])
                await by_song.subscribe(JOB_UPDATED, songId=second_song)
                await everything.subscribe(JOB_UPDATED)
                await asyncio.sleep(0.2)

                await claim(gql, "w1")  # the first (oldest) job
                await claim(gql, "w2")
                await report(gql, second_job["id"], "w2", 10)
                await report(gql, first_job["id"], "w1", 20)

                seen = [(await everything.next_data())["jobUpdated"] for _ in range(4)]
                assert [(e["id"], e["progress"]) for e in seen] == [
                    (first_job["id"], 0),
                    (second_job["id"], 0),
                    (second_job["id"], 10),
                    (first_job["id"], 20),
                ]
                job_events = [(await by_job.next_data())["jobUpdated"] for _ in range(2)]
                assert {e["id"] for e in job_events} == {first_job["id"]}
                song_events = [(await by_song.next_data())["jobUpdated"] for _ in range(2)]
                assert {e["song"]["id"] for e in song_events} == {second_song}
                await by_job.expect_silence(0.3)
                await by_song.expect_silence(0.1)

                wrong = await by_job.subscribe(JOB_UPDATED, jobId=first_song)
                refused = await by_job.receive()
                assert refused["id"] == wrong
                assert refused["payload"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def next_event(subscription: AsyncIterator[JobEvent], within: float = 5.0) -> JobEvent:
    return await asyncio.wait_for(anext(subscription), within)


async def test_a_rolled_back_change_is_never_announced(db: Database) -> None:
    await JobEvents.of(db).start()  # PostgreSQL: LISTEN, as the app's lifespan does
    try:
        song = await add_song(db, youtube_id="dQw4w9WgXcQ", source=SongSource.YOUTUBE)
        with JobEvents.of(db).subscribe() as events:
            # The job is written and announced, then the unit of work's second write
            # breaks a rule: all of it is rolled back, announcement included.
            with pytest.raises(Conflict):
                async with db.transaction() as session:
                    await JobRepository(session).create(song_id=song.id)
                    await SongRepository(session).create(
                        title="Copy", artist="Rick", youtube_id="dQw4w9WgXcQ"
                    )
            # A change the database itself refuses (progress over 100), after an
            # announced change in the same unit of work.
            with pytest.raises(ValidationError):
                async with db.transaction() as session:
                    jobs = JobRepository(session)
                    job = await jobs.create(song_id=song.id)
                    await jobs.update(job, progress=101)

            async with db.transaction() as session:
                kept = await JobRepository(session).create(song_id=song.id)
                with pytest.raises(TimeoutError):  # not before the commit
                    await next_event(events, 0.3)

            announced = await next_event(events)
            assert announced.id == kept.id
            with pytest.raises(TimeoutError):
                await next_event(events, 0.3)
    finally:
        await JobEvents.of(db).stop()


async def test_an_event_carries_the_whole_job(db: Database) -> None:
    """Subscribers show an event without a query; one too big for NOTIFY is read once."""
    await JobEvents.of(db).start()
    try:
        song = await add_song(db)
        with JobEvents.of(db).subscribe() as events:
            async with db.transaction() as session:
                jobs = JobRepository(session)
                job = await jobs.create(song_id=song.id)
                # 2,000 four-byte characters: past NOTIFY's 8,000-byte limit.
                await jobs.update(job, message="🎤" * 2000)
            created, updated = await next_event(events), await next_event(events)
        assert created.id == updated.id == job.id
        assert updated.message == "🎤" * 2000
        assert updated.updated_at == job.updated_at
        assert updated.song_id == song.id
    finally:
        await JobEvents.of(db).stop()


def random_text(size: int) -> str:
    # Random, so WebSocket compression cannot shrink what a slow subscriber leaves unread.
    return "".join(random.choices(string.ascii_letters + string.digits, k=size))


HEAVY = (
    "subscription($jobId: ID) { jobUpdated(jobId: $jobId) { progress "
    + " ".join(f"s{n}: song {{ lyrics }}" for n in range(10))
    + " } }"
)


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_up(
    db: Database, backend_name: str
) -> None:
    """A subscriber that stops reading is told and ended; a vanished one leaves nothing
    behind; both while a fast subscriber receives every event."""
    app = create_app(settings=Settings(subscriber_queue=4), db=db)
    events = JobEvents.of(db)
    async with (
        serve_in_process(app) as url,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers=bearer(await issue_token(db, "admin")),
        ) as http,
    ):
        gql = GraphQLClient(http)
        song = await add_song(db, lyrics=random_text(100_000))
        async with db.transaction() as session:
            job = await JobRepository(session).create(song_id=song.id)
        job_id = global_id("Job", job.id)
        await claim(gql, "w1")
        reports = 300

        async with (
            graphql_socket(url) as fast,
            # Reads (almost) nothing: its buffers fill, then the server's queue for it.
            graphql_socket(url, compression=None, max_size=None, max_queue=1) as slow,
            graphql_socket(url) as vanishing,
        ):
            await fast.subscribe(
                "subscription($jobId: ID) { jobUpdated(jobId: $jobId) { progress } }", jobId=job_id
            )
            await slow.subscribe(HEAVY, jobId=job_id)
            await vanishing.subscribe(HEAVY, jobId=job_id)
            await eventually(lambda: events.subscriber_count == 3)
            # The vanishing client's machine drops off the network mid-stream.
            vanishing.connection.transport.abort()

            # The fast client reads each event as it comes (in step with the worker, so a
            # loaded machine cannot bunch them up past its queue); the slow one never does.
            for n in range(reports):
                result = await report(gql, job_id, "w1", n // 3)
                assert result["__typename"] == "WorkerJobSuccess"
                assert (await fast.next_data())["jobUpdated"]["progress"] == n // 3

            await eventually(lambda: events.subscriber_count == 1)
            # The slow client reads at last: what was sent before it was dropped, then why.
            received = 0
            while (message := await slow.receive()).get(
                "type"
            ) == "next" and "errors" not in message["payload"]:
                received += 1
            assert 0 < received < reports
            assert message["type"] == "next"
            assert message["payload"]["errors"][0]["extensions"]["code"] == "SUBSCRIBER_TOO_SLOW"
            assert (await slow.receive())["type"] == "complete"
        await eventually(lambda: events.subscriber_count == 0)


async def test_changes_reach_subscribers_of_another_server_process(
    empty_url: str, tmp_path: Path, backend_name: str
) -> None:
    if backend_name != "postgresql":
        pytest.skip("several server processes share a database only on PostgreSQL")
    with (
        live_server(empty_url, tmp_path) as watched,
        live_server(empty_url, tmp_path) as written,
    ):
        async with (
            http_client(written, empty_url) as gql,
            graphql_socket(watched.ws_url) as ws,
            graphql_socket(written.ws_url, LEGACY_WS) as local,
        ):
            await ws.subscribe(JOB_UPDATED)
            await local.subscribe(JOB_UPDATED)
            await asyncio.sleep(0.2)
            song_id, job = await new_song_with_job(gql, "Across")
            await claim(gql, "w1")
            await report(gql, job["id"], "w1", 70, "mixing")

            for socket in (ws, local):
                events: list[dict[str, Any]] = [
                    (await socket.next_data())["jobUpdated"] for _ in range(3)
                ]
                assert [(e["status"], e["progress"]) for e in events] == [
                    ("PENDING", 0),
                    ("PROCESSING", 0),
                    ("PROCESSING", 70),
                ]
                assert events[2]["message"] == "mixing"
                assert events[0]["song"] == {"id": song_id, "title": "Across"}
