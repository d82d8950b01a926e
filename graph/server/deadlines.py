"""Work that must answer in time, even when what it waits on never answers."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Work that ran out of time and is being cancelled: kept (asyncio holds tasks weakly)
# until it ends, and its outcome read so that nothing is logged as never retrieved.
_stopping: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _stopping.discard(task)
    if not task.cancelled():
        task.exception()


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """The result of `work`, or TimeoutError once `seconds` have passed.

    The work runs in a task of its own, cancelled when time is up. The caller does not
    wait for the cancellation to finish: cleaning up after a database that stopped
    answering (a pooled connection's goodbye) can take as long again, and the answer that
    time is up must not.
    """
    task = asyncio.create_task(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    _stopping.add(task)
    task.add_done_callback(_forget)
    raise TimeoutError
