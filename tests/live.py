"""Real Songbook server processes, for behaviour that crosses a process boundary."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


async def run_command(database_url: str, *args: str, stderr: bool = False) -> tuple[int, str]:
    """Run `songbook ARGS...` on the database; its exit code and standard output (with
    its standard error after it, when `stderr`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "graph.server.cli", *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    stdout, errors = await process.communicate()
    return await process.wait(), stdout.decode() + (errors.decode() if stderr else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """One uvicorn process serving Songbook on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """Send SIGTERM, as a process manager does, and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def refuses_connections(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) != 0


@contextmanager
def live_server(
    database_url: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 1,
    timeout: float = 30.0,
    log_level: str = "warning",
) -> Iterator[LiveServer]:
    """Run `songbook serve` (which migrates first) until the block ends."""
    with live_process(
        lambda port: [
            sys.executable, "-m", "graph.server.cli", "serve",
            "--port", str(port), "--workers", str(workers), "--log-level", log_level,
        ],
        database_url, log_dir, env, timeout=timeout,
    ) as server:  # fmt: skip
        yield server


@contextmanager
def live_process(
    command: Callable[[int], list[str]],
    database_url: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 30.0,
) -> Iterator[LiveServer]:
    """Run `command(port)`, an HTTP server answering /healthz on that port, until the
    block ends (tests.benchmarks.compiled starts its ceiling app this way too)."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    environment = {**os.environ, "DATABASE_URL": database_url, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(port), cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    server = LiveServer(process, port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {timeout}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
