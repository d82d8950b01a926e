"""uvicorn, stopping well: on SIGTERM (or Ctrl+C) the server stops accepting connections,
closes WebSockets with 1001 (going away), lets in-flight requests finish for up to
SONGBOOK_SHUTDOWN_GRACE seconds, and the process exits 0.

uvicorn 0.54 (pinned in pyproject.toml) offers no hook for two of these, so this module
alone reaches into it:
- Its Server closes WebSockets with 1012 (service restart) and then raises the signal it
  caught again once shut down, so the process dies of SIGTERM instead of exiting 0.
  `SongbookServer` first asks the app to close its sockets (through the lifespan state:
  graph/server/app.py's GOING_AWAY), and forgets the caught signals.
- Its `--workers` supervisor builds uvicorn's own Server in each worker process;
  `serve_workers` has it build SongbookServer instead.
"""

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import ChangeReload, multiprocess

from graph.server.app import GOING_AWAY
from graph.server.metrics import MULTIPROCESS_DIRECTORY


class SongbookServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state: dict[str, Any] = getattr(getattr(self, "lifespan", None), "state", {})
        going_away: Callable[[], Awaitable[None]] | None = state.get(GOING_AWAY)
        if going_away is not None:
            await going_away()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                # A signal that asked for a graceful stop got one: nothing to raise again.
                self._captured_signals.clear()


class _Worker(multiprocess.Process):
    """A `--workers` process, serving with SongbookServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = SongbookServer(config=self.config)
        return self._server


def serve(config: uvicorn.Config) -> None:
    """Serve until SIGTERM or SIGINT, in one process or (config.workers) several."""
    if config.should_reload:
        sock = config.bind_socket()
        ChangeReload(config, target=SongbookServer(config).run, sockets=[sock]).run()
        return
    if config.workers <= 1:
        server = SongbookServer(config)
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    sock = config.bind_socket()
    # The supervisor makes each worker by this module-level name.
    uvicorn_process = multiprocess.Process
    multiprocess.Process = _Worker  # type: ignore[misc]
    # Each worker writes its metrics where any of them can sum them for /metrics.
    directory = None
    if not os.environ.get(MULTIPROCESS_DIRECTORY):
        directory = os.environ[MULTIPROCESS_DIRECTORY] = tempfile.mkdtemp(prefix="songbook-")
    try:
        multiprocess.Multiprocess(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = uvicorn_process  # type: ignore[misc]
        if directory is not None:
            del os.environ[MULTIPROCESS_DIRECTORY]
            shutil.rmtree(directory, ignore_errors=True)
