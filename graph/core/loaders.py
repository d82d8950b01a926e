"""Per-request dataloaders: each domain declares its own, each request builds them lazily.

A domain declares `song_by_id = Loader(batch_function)` in its loaders.py; a resolver asks
the request's `context.loaders.load(song_by_id, key)`. The DataLoader behind it is made the
first time a request asks for it, inside that request's event loop, so no cached row is
ever shared between requests. Each batch runs in a session of its own: sibling resolvers
load concurrently, and an AsyncSession must never be used by two tasks at once.

The same declaration serves the compiled read path (graph/core/planner), which calls the
batch itself on its one connection, naming the columns its selection needs.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader

from persistence.database import Reads
from persistence.repositories.base import Columns, Reader

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Batch = Callable[[Reader, Sequence[K], Columns], Awaitable[Sequence[V]]]


class Loader(Generic[K, V]):
    """A dataloader declaration: how to fetch the values of many keys in one batch.

    `batch(reader, keys, columns)` returns one value per key, in the keys' order: whole
    rows when `columns` is None (dataloaders), else rows holding at least those columns.
    """

    def __init__(self, batch: Batch[K, V]) -> None:
        self.batch = batch

    def build(self, reads: Reads, running: "set[asyncio.Task[Any]]") -> "DataLoader[K, V]":
        """A DataLoader reading through `reads`; each batch, while it runs, is in `running`."""

        async def run(keys: list[K]) -> list[V]:
            # aiodataloader runs each batch in a task of its own, which cancelling the
            # request would not reach: the request keeps it here to cancel it too.
            task = asyncio.current_task()
            assert task is not None
            running.add(task)
            try:
                async with reads.session() as session:
                    return list(await self.batch(session, keys, None))
            finally:
                running.discard(task)

        return DataLoader(run)


def _retrieved(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()


class RequestLoaders:
    """One request's dataloaders, each built the first time it is asked for."""

    def __init__(self, reads: Reads) -> None:
        self._reads = reads
        self._built: dict[Loader[Any, Any], DataLoader[Any, Any]] = {}
        self._running: set[asyncio.Task[Any]] = set()

    def cancel(self) -> None:
        """Stop the batches still running: the request they serve has ended."""
        for task in list(self._running):
            task.cancel()

    def _get(self, loader: Loader[K, V]) -> "DataLoader[K, V]":
        built = self._built.get(loader)
        if built is None:
            built = self._built[loader] = loader.build(self._reads, self._running)
        return built

    async def load(self, loader: Loader[K, V], key: K) -> V:
        # Every resolver asking for the key awaits the same future. When graphql-core
        # cancels one of them (a sibling's error nulled their parent), the future must
        # live on for the others, or they would end with a CancelledError of their own.
        future = self._get(loader).load(key)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Whoever else waits on it reports its failure; if nobody does, nobody should
            # (asyncio would log it as never retrieved, traceback and all).
            future.add_done_callback(_retrieved)
            raise

    def prime(self, loader: Loader[K, V], key: K, value: V) -> None:
        """Answer `key` with `value` from now on, replacing anything cached."""
        self._get(loader).clear(key).prime(key, value)

    def clear(self, loader: Loader[K, V], key: K) -> None:
        self._get(loader).clear(key)

    def clear_all(self, loader: Loader[K, V]) -> None:
        self._get(loader).clear_all()
