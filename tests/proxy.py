"""A TCP proxy in front of the database, for outages a test can switch on and off.

The proxy runs its own event loop in a thread, so synchronous tests (driving a real server
process) and asynchronous ones use it alike. It can:

- `forward()`: pass bytes both ways (the normal state);
- `pause()`: stop passing bytes but keep every socket open, and accept new connections
  without answering them: a database that stops answering;
- `refuse()`: stop listening, so new connections are refused, leaving existing ones be;
- `cut()`: close every connection it carries (a network cut);
- `down()`: both of the last two, a database server that went away.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class DatabaseProxy:
    """Forwards 127.0.0.1:`port` to `upstream_host`:`upstream_port`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    # --- control, from any thread -------------------------------------------------------

    def start(self) -> "DatabaseProxy":
        self._thread.start()
        self._call(self._start())
        return self

    def close(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def forward(self) -> None:
        """Pass bytes again, and listen if refusing."""
        self._call(self._forward())

    def pause(self) -> None:
        self._call(self._pause())

    def refuse(self) -> None:
        self._call(self._stop_listening())

    def cut(self) -> None:
        self._call(self._cut())

    def down(self) -> None:
        """The database server went away: refuse new connections, cut existing ones."""
        self.refuse()
        self.cut()

    @property
    def open_connections(self) -> int:
        return len(self._writers) // 2

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # --- inside the proxy's loop ---------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _forward(self) -> None:
        assert self._flowing is not None
        self._flowing.set()
        await self._listen()

    async def _pause(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _close(self) -> None:
        assert self._flowing is not None
        await self._stop_listening()
        await self._cut()
        # Let every pipe find its sockets closed and end.
        self._flowing.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            for end in (writer, upstream_writer):
                end.transport.abort()
                self._writers.discard(end)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        # One side ended: end the other, as a real connection would.
        writer.transport.abort()


@contextlib.contextmanager
def database_proxy(upstream_host: str, upstream_port: int) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(upstream_host, upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.close()
