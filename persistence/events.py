"""Job change events, announced only once the change has committed.

A unit of work announces each job it changes with `announce(session, job)`:

- On PostgreSQL that is `pg_notify` inside the same transaction. PostgreSQL delivers a
  notification only when its transaction commits, never on rollback, to every session
  listening on the channel: one LISTEN connection per server process (`JobEvents.start`)
  fans the events out to that process's subscribers. So a change made through any process
  reaches subscribers of every process.
- On SQLite (one process) the events wait in the session until it commits and are then
  handed to the in-process subscribers; a rollback drops them.

Subscribers read through a bounded queue. Publishing never waits for a subscriber: one
whose queue is full is dropped and told so (`SubscriberTooSlow`) when it next reads.

No subscriber misses an event silently. When the LISTEN connection is lost, whatever was
committed until it is back never reaches this process: every subscription is ended with
DatabaseUnavailable (clients subscribe again and read what they follow), and new ones are
refused the same way until the listener is back.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from persistence.database import Database, unavailable_reason
from persistence.errors import DatabaseUnavailable, SubscriberTooSlow
from persistence.models import Job, JobStatus

logger = logging.getLogger("songbook.notifications")

CHANNEL = "songbook_job_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. Jobs are small, but a long
# message in multi-byte characters could pass that: such events travel as the job's id
# alone and the listening process reads the job once for all its subscribers.
MAX_PAYLOAD_BYTES = 7900
DEFAULT_QUEUE_SIZE = 256
# Keys in Session.info: the process's JobEvents, and events waiting for the commit.
EVENTS_KEY = "songbook_job_events"
_PENDING_KEY = "songbook_pending_job_events"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job as it was when a change to it committed: every column, so subscribers need no
    query to show it."""

    id: str
    song_id: str
    status: JobStatus
    progress: int
    message: str | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> "JobEvent":
        event = cls(**{name: getattr(job, name) for name in cls.__slots__})
        return replace(event, status=JobStatus(job.status))

    def to_payload(self) -> str:
        payload = orjson.dumps(asdict(self))
        if len(payload) > MAX_PAYLOAD_BYTES:
            payload = orjson.dumps({"id": self.id, "song_id": self.song_id, "refetch": True})
        return payload.decode()

    @classmethod
    def from_payload(cls, payload: str | bytes) -> "JobEvent | str":
        """The event, or only the job's id when the payload was too big to carry it."""
        data = orjson.loads(payload)
        if data.get("refetch"):
            return str(data["id"])
        for name in ("lease_expires_at", "created_at", "updated_at"):
            if data[name] is not None:
                data[name] = datetime.fromisoformat(data[name])
        data["status"] = JobStatus(data["status"])
        return cls(**data)

    def to_model(self) -> Job:
        """A detached Job row holding the event's values, for code that maps rows."""
        return Job(**{name: getattr(self, name) for name in self.__slots__})


# An event carries every column of its job; a column added to jobs must join it.
assert set(JobEvent.__slots__) == set(Job.__table__.columns.keys()), "JobEvent lacks a column"


async def announce(session: AsyncSession, job: Job) -> None:
    """Publish `job`'s current state once the session's transaction commits."""
    job_event = JobEvent.of(job)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_notify(CHANNEL, job_event.to_payload())))
    else:
        session.info.setdefault(_PENDING_KEY, []).append(job_event)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    pending: list[JobEvent] | None = session.info.pop(_PENDING_KEY, None)
    events: JobEvents | None = session.info.get(EVENTS_KEY)
    if pending and events is not None:
        for job_event in pending:
            events.publish(job_event)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


class Subscription:
    """One subscriber's events, oldest first, through a queue of at most `limit` events."""

    def __init__(self, matches: Callable[[JobEvent], bool], limit: int) -> None:
        self.matches = matches
        self.limit = limit
        self._queue: asyncio.Queue[JobEvent | None] = asyncio.Queue(limit + 1)
        self.too_slow = False
        # Why events may have been missed, once they may have been.
        self.interrupted: str | None = None
        self.closed = False

    def offer(self, job_event: JobEvent) -> bool:
        """Queue the event if it matches; False when the subscriber must be dropped."""
        if self.closed or not self.matches(job_event):
            return True
        if self._queue.qsize() >= self.limit:
            self.too_slow = True
            self.close()
            return False
        self._queue.put_nowait(job_event)
        return True

    def close(self) -> None:
        """End the subscription; a reader waiting for an event wakes up."""
        if not self.closed:
            self.closed = True
            # The queue keeps one slot spare for this wake-up call.
            self._queue.put_nowait(None)

    def interrupt(self, reason: str) -> None:
        """End the subscription with an error: events may have been missed."""
        if not self.closed:
            self.interrupted = reason
            self.close()

    def _check(self) -> None:
        if self.too_slow:
            raise SubscriberTooSlow(self.limit)
        if self.interrupted is not None:
            raise DatabaseUnavailable(reason=self.interrupted)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> JobEvent:
        self._check()
        job_event = await self._queue.get()
        self._check()
        if job_event is None:
            raise StopAsyncIteration
        return job_event


class JobEvents:
    """One per process (per Database): fans committed job changes out to subscribers."""

    # How often the listener checks its connection, and how long it waits for an answer:
    # a network that silently stops carrying packets never closes the socket.
    CHECK_EVERY = 10.0
    CHECK_TIMEOUT = 5.0
    NOT_LISTENING = "live updates lost their database connection"

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscriptions: set[Subscription] = set()
        self._listener: asyncio.Task[None] | None = None
        self._refetches: set[asyncio.Task[None]] = set()
        # Whether this process hears every committed change (PostgreSQL: while its LISTEN
        # connection is up; SQLite: always, the changes are its own).
        self.listening = db.dialect != "postgresql"
        # Sessions of `db` find the bus here once they commit (SQLite's in-process events).
        db.session_info[EVENTS_KEY] = self

    @classmethod
    def of(cls, db: Database) -> "JobEvents":
        """The bus of `db`: one per database handle, made on first use."""
        existing = db.session_info.get(EVENTS_KEY)
        return existing if isinstance(existing, cls) else cls(db)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    @contextlib.contextmanager
    def subscribe(
        self,
        matches: Callable[[JobEvent], bool] = lambda _: True,
        limit: int = DEFAULT_QUEUE_SIZE,
    ) -> Iterator[Subscription]:
        """Events committed from now until the block ends, those `matches` accepts."""
        subscription = Subscription(matches, limit)
        if not self.listening:
            subscription.interrupt(self.NOT_LISTENING)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription.close()

    def publish(self, job_event: JobEvent) -> None:
        """Hand a committed event to every subscriber; never waits for any of them."""
        for subscription in list(self._subscriptions):
            if not subscription.offer(job_event):
                self._subscriptions.discard(subscription)
                logger.warning(
                    "Dropped a subscriber that fell %d events behind", subscription.limit
                )

    async def start(self, ready_timeout: float = 10.0) -> None:
        """Begin listening for other processes' events (PostgreSQL only)."""
        if self._db.dialect != "postgresql" or self._listener is not None:
            return
        listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(listening), name="job-events-listener")
        try:
            await asyncio.wait_for(listening.wait(), ready_timeout)
        except TimeoutError:
            logger.warning("Not yet listening for job events; still trying in the background")

    async def stop(self) -> None:
        """Stop listening and end every subscription."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
            self.listening = False
        for task in list(self._refetches):
            task.cancel()
        for subscription in list(self._subscriptions):
            subscription.close()
        self._subscriptions.clear()

    async def _listen(self, listening: asyncio.Event) -> None:
        """Keep one LISTEN connection open, reconnecting after a loss.

        Events committed while the connection is down are not replayed: the subscriptions
        it served are ended with an error when it is lost (`_lost`), and their clients
        read the job again when they subscribe again.
        """
        import asyncpg

        dsn = sa.make_url(self._db.settings.url).set(drivername="postgresql")
        timeout = self._db.settings.connect_timeout
        delay = 0.1
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(
                    dsn.render_as_string(hide_password=False), timeout=timeout
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await asyncio.wait_for(
                    connection.add_listener(CHANNEL, self._on_notification), timeout
                )
                self._listening_again(listening)
                delay = 0.1
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.CHECK_EVERY)
                    if not lost.is_set():
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), self.CHECK_TIMEOUT)
                self._lost("the connection was lost")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._lost(unavailable_reason(error) or type(error).__name__)
            finally:
                if connection is not None:
                    # Never a polite close: the connection is gone or going.
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _listening_again(self, listening: asyncio.Event) -> None:
        if listening.is_set():
            logger.warning("Job events listener is listening again")
        listening.set()
        self.listening = True

    def _lost(self, reason: str) -> None:
        """The listener is not listening: tell every subscriber, once per outage."""
        if not self.listening:
            return
        self.listening = False
        ended = self._end_every_subscription()
        logger.warning(
            "Job events listener lost its connection (%s); ended %d subscriptions", reason, ended
        )

    def _end_every_subscription(self) -> int:
        """End every subscription with DatabaseUnavailable (they may have missed an event,
        so their clients resubscribe and refetch); how many there were."""
        subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.interrupt(self.NOT_LISTENING)
        self._subscriptions.clear()
        return len(subscriptions)

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            job_event = JobEvent.from_payload(payload)
        except (ValueError, KeyError, TypeError):
            logger.error("Ignored a malformed job event: %.200s", payload)
            return
        if isinstance(job_event, str):
            task = asyncio.create_task(self._publish_from_database(job_event))
            self._refetches.add(task)
            task.add_done_callback(self._refetches.discard)
        else:
            self.publish(job_event)

    async def _publish_from_database(self, job_id: str) -> None:
        try:
            async with self._db.read() as session:
                job = await session.get(Job, job_id)
        except Exception as error:
            # The event is lost: end every subscription rather than let one miss it unseen.
            reason = unavailable_reason(error) or "the job could not be read"
            ended = self._end_every_subscription()
            logger.warning(
                "Could not read a changed job to announce it (%s); ended %d subscriptions",
                reason,
                ended,
            )
            return
        if job is not None:
            self.publish(JobEvent.of(job))
