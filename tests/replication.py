"""A PostgreSQL primary and a streaming replica of it, each a server of its own.

The shared server on 127.0.0.1:5432 takes no replication connections and must not be
reconfigured, so the primary is made with initdb in a temporary directory and the replica
with `pg_basebackup -R -X stream` from it, each started with pg_ctl on a free port. As
root, every PostgreSQL program runs as the `postgres` user (the server refuses root).
"""

import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import asyncpg

from tests.live import ROOT, free_port

PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup")


def server_binaries() -> Path | None:
    """The directory holding PostgreSQL's server programs, if they are installed."""
    candidates = [os.environ.get("SONGBOOK_PG_BINDIR", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if found := shutil.which("pg_ctl"):
        candidates.append(str(Path(found).parent))
    for candidate in filter(None, candidates):
        if all((Path(candidate) / program).exists() for program in PROGRAMS):
            return Path(candidate)
    return None


class Cluster:
    """A running primary and its replica; `url` gives either's database URL."""

    def __init__(self, bindir: Path, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.primary_port = free_port()
        self.replica_port = free_port()

    def url(self, port: int, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{port}/postgres"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _configure(self, data: Path, port: int) -> None:
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\nfsync = off\n"
                "max_connections = 200\n"
            )

    def create(self) -> None:
        primary = self.directory / "primary"
        self.run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "--no-sync")
        self._configure(primary, self.primary_port)
        self.run("pg_ctl", "-D", str(primary), "-w", "-l", str(self.directory / "primary.log"),
                 "start")  # fmt: skip
        replica = self.directory / "replica"
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "postgres", "-D", str(replica), "-R", "-X", "stream")  # fmt: skip
        self._configure(replica, self.replica_port)
        self.start_replica()

    def start_replica(self) -> None:
        self.run("pg_ctl", "-D", str(self.directory / "replica"), "-w",
                 "-l", str(self.directory / "replica.log"), "start")  # fmt: skip

    def stop_replica(self) -> None:
        self.run("pg_ctl", "-D", str(self.directory / "replica"), "-m", "fast", "-w", "stop")

    async def on_replica(self, statement: str) -> object:
        connection = await asyncpg.connect(self.replica_url)
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    async def caught_up(self) -> None:
        """Wait (up to 30 s) until the replica has replayed what the primary has written."""
        primary = await asyncpg.connect(self.primary_url)
        try:
            written = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        finally:
            await primary.close()
        query = f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn"
        for _ in range(600):
            if await self.on_replica(query):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the replica did not catch up in 30 s")

    async def pause_replay(self) -> None:
        await self.on_replica("SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await self.on_replica("SELECT pg_wal_replay_resume()")

    def destroy(self) -> None:
        for name in ("replica", "primary"):
            data = self.directory / name
            if (data / "postmaster.pid").exists():
                with suppress(subprocess.SubprocessError):
                    self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")


@contextmanager
def streaming_cluster(bindir: Path) -> Iterator[Cluster]:
    """A primary migrated to the newest schema, and a replica that has replayed it."""
    directory = Path(tempfile.mkdtemp(prefix="songbook-replication-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = Cluster(bindir, directory)
    try:
        cluster.create()
        migrated = subprocess.run(
            [sys.executable, "-m", "graph.server.cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": cluster.primary_url},
            capture_output=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        asyncio.run(cluster.caught_up())
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(directory, ignore_errors=True)
