"""Read replicas: which one a query reads from, and how far behind each one is.

A monitor, started with the app, asks the primary how far its write-ahead log has been
written and each replica how far it has replayed, every `interval` seconds. A replica's
lag is how long ago the primary first wrote something the replica has not replayed yet,
by this process's clock: no server's clock is compared with another's, and a replica of
an idle primary is never counted behind. Queries go round the replicas that answered
their last check and lag at most `max_lag`; with none, they read from the primary.

Read-your-writes: a mutation hands its client the primary's write position after its
commit (`Database.write_position`); a query sending it back reads from a replica that has
replayed that far, waiting up to `wait` for one, and from the primary otherwise. While
requests wait, one poller asks the replicas for their position every few milliseconds
on behalf of all of them.
"""

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from persistence.errors import DomainError

logger = logging.getLogger("songbook.replicas")

# How often a request waiting for a replica to replay its write asks again, in seconds.
POLL_EVERY = 0.005
# The longest a check waits for one replica's answer before counting it down, in seconds.
CHECK_TIMEOUT = 2.0

_POSITION = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_REPLAYED = sa.text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
# The same, with the schema's revision, which must be the one the code expects.
_REPLAYED_AND_SCHEMA = sa.text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " (SELECT string_agg(version_num, ',') FROM alembic_version)"
)
_WRITTEN = sa.text("SELECT pg_current_wal_lsn()::text")


def parse_position(text: str) -> int | None:
    """A write-ahead log position (PostgreSQL's `16/B374D848`) as a number, or None when
    `text` is not one."""
    match = _POSITION.match(text.strip())
    if match is None:
        return None
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


class Reads(Protocol):
    """Where reads go (persistence.database.Reads): what choosing among them needs."""

    engine: AsyncEngine
    role: str

    def connection(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]: ...


R = TypeVar("R", bound=Reads)


@dataclass(eq=False)
class Replica(Generic[R]):
    """One replica as the last check (or poll) found it."""

    number: int  # 1-based, in DATABASE_READ_URLS' order: how logs and /readyz name it
    reads: R
    # None while it has not answered, or when its last check failed.
    replayed: int | None = None
    # Seconds behind the primary at the last check (0 when caught up).
    lag: float = 0.0
    reason: str | None = "not checked yet"  # why it is skipped, None when it is not
    state: str = "unknown"  # what the last log line said: "ok", "lagging" or "down"

    @property
    def engine(self) -> AsyncEngine:
        return self.reads.engine

    @property
    def usable(self) -> bool:
        return self.reason is None


@dataclass
class _Written:
    """The primary's write positions as the monitor saw them, oldest first."""

    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))

    def add(self, at: float, position: int) -> None:
        if not self.samples or position > self.samples[-1][1]:
            self.samples.append((at, position))

    def lag(self, replayed: int, now: float) -> float:
        """How long ago the primary first wrote past `replayed`: 0 when it has not."""
        for at, position in self.samples:
            if position > replayed:
                return now - at
        return 0.0

    def forget_before(self, moment: float) -> None:
        # The oldest sample that might still be the answer stays.
        while len(self.samples) > 1 and self.samples[1][0] <= moment:
            self.samples.popleft()


class Replicas(Generic[R]):
    """The replicas of one database (none when DATABASE_READ_URLS is empty), beside the
    primary's reads, which queries fall back to."""

    def __init__(self, primary: R, replicas: Sequence[R], *, max_lag: float, wait: float) -> None:
        self.primary = primary
        self.max_lag = max_lag
        self.wait = wait
        self._replicas = [Replica(number, reads) for number, reads in enumerate(replicas, start=1)]
        self._turns = itertools.count()
        self._written = _Written()
        # Frequent enough that a replica falling behind is skipped well within max_lag.
        self.interval = min(1.0, max(0.05, max_lag / 5))
        self._monitor: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._replayed = asyncio.Event()
        self._waiting = 0
        # The schema revision a replica must have replayed before queries may read it.
        self.head: str | None = None

    def __iter__(self) -> Iterator[Replica[R]]:
        return iter(self._replicas)

    def __bool__(self) -> bool:
        return bool(self._replicas)

    # --- Choosing ------------------------------------------------------------------------

    async def choose(self, read_after: int | None = None) -> R:
        """Where a query reads: the next usable replica (one that has replayed past
        `read_after`, waiting up to `wait` for one), else the primary."""
        if not self._replicas:
            return self.primary
        replica = self._next(read_after)
        if replica is None and read_after is not None and self.wait > 0:
            replica = await self._caught_up(read_after)
        return self.primary if replica is None else replica.reads

    def failed(self, reads: R, reason: str) -> None:
        """A query found the replica behind `reads` failing: skip it until a check finds it
        answering again."""
        for replica in self._replicas:
            if replica.reads is reads:
                self._mark(replica, f"down: {reason}", "down")

    def _next(self, read_after: int | None) -> Replica[R] | None:
        candidates = [
            r
            for r in self._replicas
            if r.usable
            and (read_after is None or (r.replayed is not None and r.replayed >= read_after))
        ]
        if not candidates:
            return None
        return candidates[next(self._turns) % len(candidates)]

    async def _caught_up(self, read_after: int) -> Replica[R] | None:
        deadline = time.monotonic() + self.wait
        self._waiting += 1
        try:
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll())
            while (replica := self._next(read_after)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not any(r.usable for r in self._replicas):
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replayed.wait(), remaining)
            return replica
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        """While requests wait for a replica to replay their write, ask the usable ones
        how far they are, for all of the waiting requests at once."""
        while self._waiting:
            await asyncio.gather(*(self._ask(r) for r in self._replicas if r.usable))
            self._replayed.set()
            self._replayed = asyncio.Event()
            await asyncio.sleep(POLL_EVERY)

    # --- Checking ------------------------------------------------------------------------

    async def start(self, head: str | None) -> None:
        """Check every replica once, then keep checking in the background; a replica
        whose schema is not at `head` (the newest migration) is skipped."""
        if not self._replicas:
            return
        self.head = head
        await self.check()
        self._monitor = asyncio.create_task(self._monitor_loop())

    async def stop(self) -> None:
        for task in (self._monitor, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._monitor = self._poller = None

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # never let one bad round end the monitoring
                logger.exception("Checking the replicas failed")

    async def check(self) -> None:
        """One round: the primary's write position, then each replica's replay and lag."""
        now = time.monotonic()
        with contextlib.suppress(DomainError, TimeoutError):
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with self.primary.connection() as connection:
                    written = parse_position(str(await connection.scalar(_WRITTEN)))
            if written is not None:
                self._written.add(now, written)
        schemas = await asyncio.gather(
            *(self._ask(replica, schema=True) for replica in self._replicas)
        )
        now = time.monotonic()
        for replica, schema in zip(self._replicas, schemas, strict=True):
            if replica.replayed is None:
                continue
            if schema != self.head:
                self._mark(replica, "its schema is not at the newest migration", "lagging")
                continue
            replica.lag = self._written.lag(replica.replayed, now)
            if replica.lag > self.max_lag:
                self._mark(replica, f"lagging {replica.lag:.1f}s behind", "lagging")
            else:
                self._mark(replica, None, "ok")
        self._written.forget_before(now - 2 * self.max_lag - self.interval)

    async def _ask(self, replica: Replica[R], schema: bool = False) -> str | None:
        """How far `replica` has replayed (and, with `schema`, the revision its schema is
        at, returned); a replica that does not answer is marked down."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with replica.reads.connection() as connection:
                    row = (
                        await connection.execute(_REPLAYED_AND_SCHEMA if schema else _REPLAYED)
                    ).one()
        except sa.exc.ProgrammingError:
            # No alembic_version table: the replica has not replayed the first migration.
            return None
        except (DomainError, TimeoutError) as error:
            reason = getattr(error, "reason", None) or "it did not answer in time"
            replica.replayed = None
            self._mark(replica, f"down: {reason}", "down")
            return None
        in_recovery, replayed, *revision = row
        position = parse_position(replayed) if in_recovery and replayed else None
        if position is None:
            replica.replayed = None
            self._mark(replica, "down: it is not replaying from a primary", "down")
            return None
        replica.replayed = max(position, replica.replayed or 0)
        if replica.state == "down":
            # Answering again: usable once the next check has measured its lag.
            replica.reason = "recovering"
        return revision[0] if revision else None

    def _mark(self, replica: Replica[R], reason: str | None, state: str) -> None:
        replica.reason = reason
        if state == replica.state:
            return
        replica.state = state
        if state == "ok":
            logger.info("Replica %d is in use", replica.number)
        else:
            logger.warning(
                "Replica %d is skipped (%s); queries read from the others or the primary",
                replica.number,
                reason,
            )

    def status(self) -> list[dict[str, Any]]:
        """Each replica's state for /readyz and the metrics."""
        return [
            {
                "replica": r.number,
                "status": r.state,
                "lagSeconds": None if r.replayed is None else round(r.lag, 3),
            }
            for r in self._replicas
        ]
