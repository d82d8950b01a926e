"""The `songbook` command as a user runs it."""

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from graph.schema import schema
from persistence.models import Base
from persistence.seed import database_label
from tests.conftest import PostgresDatabases
from tests.live import ROOT


def songbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph.server.cli", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", "schema.graphql is stale: run `make schema`"


def test_export_schema_writes_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    result = songbook("export-schema", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text(encoding="utf-8") == (ROOT / "schema.graphql").read_text(
        encoding="utf-8"
    )


def test_seed_builds_a_library_with_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    result = songbook("seed", "--songs", "2500", "--batch-size", "1000", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "2500/2500 songs" in result.stderr
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        songs = connection.execute(sa.text("SELECT count(*) FROM songs")).scalar_one()
        orphans = connection.execute(
            sa.text("SELECT count(*) FROM songs WHERE id NOT IN (SELECT song_id FROM jobs)")
        ).scalar_one()
        sources = {
            row[0] for row in connection.execute(sa.text("SELECT DISTINCT source FROM songs"))
        }
    engine.dispose()
    assert songs == 2500
    assert orphans == 0
    assert sources == {"youtube", "upload", "local"}
    # By default the library is at rest: no backlog for workers, nothing in flight.
    statuses = check_seeded_lifecycle(url)
    assert set(statuses) == {"completed", "failed"}


SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]
ADDED = re.compile(r"added (\d+) songs and (\d+) jobs(?: \(([^)]*)\))? to (\S+)")


def added_line(result: subprocess.CompletedProcess[str]) -> re.Match[str]:
    """The one stdout line a seed run ends with."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    match = ADDED.fullmatch(lines[0])
    assert match, lines[0]
    return match


def check_seeded_lifecycle(url: str) -> dict[str, int]:
    """Assert every seeded job and song is a state the real system can be in; return how
    many jobs have each status."""
    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        jobs = connection.execute(
            sa.select(JOBS).order_by(JOBS.c.song_id, JOBS.c.created_at, JOBS.c.id)
        ).all()
        songs = {row.id: row for row in connection.execute(sa.select(SONGS))}
    engine.dispose()
    history: dict[str, list[sa.Row[tuple[object, ...]]]] = {}
    for job in jobs:
        history.setdefault(job.song_id, []).append(job)
    assert set(history) == set(songs), "every song has a job history"
    statuses: dict[str, int] = {}
    for song_id, song_jobs in history.items():
        *older, newest = song_jobs
        # Only the newest job may be unfinished; retryJob follows only a failed job.
        assert all(job.status == "failed" for job in older), song_jobs
        has_stems = newest.status == "completed"
        song = songs[song_id]
        assert (song.vocals_path is not None) is has_stems, (song, newest)
        assert (song.instrumental_path is not None) is has_stems, (song, newest)
        for job in song_jobs:
            statuses[job.status] = statuses.get(job.status, 0) + 1
            assert job.created_at <= job.updated_at <= now, job
            assert song.date_added <= job.created_at, (song, job)
            if job.status == "pending":
                assert job.claimed_by is None and job.lease_expires_at is None, job
                assert job.progress == 0, job
            elif job.status == "processing":
                # Held by a worker that stopped reporting: its lease has lapsed.
                assert job.claimed_by and job.claimed_by.startswith("seed-worker-"), job
                assert job.lease_expires_at is not None and job.lease_expires_at < now, job
                assert 0 <= job.progress < 100, job
            elif job.status == "completed":
                assert job.progress == 100 and job.lease_expires_at is None, job
            else:
                assert job.status == "failed", job
                assert job.message and job.lease_expires_at is None, job
                assert 0 <= job.progress < 100, job
    return statuses


def test_seed_runs_again_on_a_library_in_use(tmp_path: Path) -> None:
    database = tmp_path / "seeded.db"
    url = f"sqlite:///{database}"
    # The same random seed twice draws the same YouTube ids: the second run must notice
    # the first run's songs hold them and draw others.
    runs = [
        songbook(
            "seed",
            "--songs",
            "1200",
            "--batch-size",
            "500",
            "--random-seed",
            "7",
            env={"DATABASE_URL": url},
        )
        for _ in range(2)
    ]
    added = [added_line(run) for run in runs]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        songs = connection.execute(sa.select(sa.func.count()).select_from(SONGS)).scalar_one()
        jobs = connection.execute(sa.select(sa.func.count()).select_from(JOBS)).scalar_one()
        youtube_ids = connection.execute(
            sa.select(
                sa.func.count(SONGS.c.youtube_id), sa.func.count(SONGS.c.youtube_id.distinct())
            )
        ).one()
    engine.dispose()
    assert songs == 2400
    assert [int(match[1]) for match in added] == [1200, 1200]
    assert sum(int(match[2]) for match in added) == jobs
    assert all(match[3] is None for match in added), "nothing unfinished by default"
    assert {match[4] for match in added} == {f"sqlite+aiosqlite:///{database}"}
    assert youtube_ids[0] > 500
    assert youtube_ids[0] == youtube_ids[1], "YouTube ids are distinct"
    check_seeded_lifecycle(url)


def test_seed_queues_unfinished_jobs_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    result = songbook(
        "seed",
        "--songs",
        "1500",
        "--pending",
        "40",
        "--processing",
        "25",
        env={"DATABASE_URL": url},
    )
    assert added_line(result)[3] == "40 pending, 25 processing"
    statuses = check_seeded_lifecycle(url)
    assert statuses["pending"] == 40
    assert statuses["processing"] == 25
    assert statuses["completed"] > 0 and statuses["failed"] > 0


def test_seed_names_the_database_without_its_password() -> None:
    label = database_label("postgresql+asyncpg://songbook:s3cret@db:5432/library?password=s3cret")
    assert label == "postgresql+asyncpg://songbook@db:5432/library"
    assert (
        database_label("sqlite+aiosqlite:///./songbook.db") == "sqlite+aiosqlite:///./songbook.db"
    )


def test_seed_help_explains_every_option() -> None:
    result = songbook("seed", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    options = re.split(r" (?=--[a-z])", text.split("options:", 1)[1])[1:]
    explained = {}
    for option in options:
        name, _, rest = option.partition(" ")
        rest = re.sub(r"^(?:N|INT|[A-Z_]+) ", "", rest)
        explained[name.rstrip(",")] = rest
    explained.pop("--help")
    assert set(explained) == {
        "--songs",
        "--batch-size",
        "--pending",
        "--processing",
        "--random-seed",
    }
    for name, help_text in explained.items():
        assert "(default: " in help_text, (name, help_text)
    assert "(default: 1000)" in explained["--songs"]
    assert "(default: 5000)" in explained["--batch-size"]
    assert "(default: 0" in explained["--pending"]
    assert "PENDING" in explained["--pending"] and "lapsed" in explained["--processing"]


def test_seed_refuses_impossible_counts(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for args, complaint in (
        (("--batch-size", "0"), "--batch-size must be at least 1"),
        (("--pending", "-1"), "--pending and --processing must not be negative"),
        (("--songs", "10", "--pending", "6", "--processing", "5"), "cannot exceed --songs"),
    ):
        result = songbook("seed", *args, env=env)
        assert result.returncode != 0, args
        assert complaint in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x.db").exists()


def test_bad_arguments_are_refused_clearly(tmp_path: Path) -> None:
    result = songbook(
        "seed", "--songs", "-5", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert result.returncode != 0
    assert "--songs must not be negative" in result.stderr
    bad_env = songbook("migrate", env={"SONGBOOK_DB_POOL_SIZE": "many"})
    assert bad_env.returncode == 2
    assert "SONGBOOK_DB_POOL_SIZE must be a whole number" in bad_env.stderr
    several_on_sqlite = songbook(
        "serve", "--workers", "2", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert several_on_sqlite.returncode != 0
    assert "several server processes need PostgreSQL" in several_on_sqlite.stderr
    assert not (tmp_path / "x.db").exists()


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a command printed (to stderr) before it stopped."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_serve_checks_every_setting_before_it_starts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for env, complaint in [
        ({"SONGBOOK_REQUEST_TIMEOUT": "soon"}, "SONGBOOK_REQUEST_TIMEOUT must be a number"),
        (
            {"SONGBOOK_ENV": "production", "SONGBOOK_ANONYMOUS": "editor"},
            "SONGBOOK_ANONYMOUS=editor lets anyone change the library",
        ),
        (
            {"DATABASE_READ_URLS": "postgresql://reader:s3cret@127.0.0.1:1/songbook"},
            "DATABASE_READ_URLS needs DATABASE_URL to be PostgreSQL",
        ),
        ({"SONGBOOK_REPLICA_MAX_LAG_S": "0"}, "SONGBOOK_REPLICA_MAX_LAG_S must be more than 0"),
    ]:
        result = songbook("serve", env={"DATABASE_URL": url, **env})
        assert result.returncode == 2, result.stderr
        assert one_line(result).startswith(f"songbook: {complaint}")
        assert "s3cret" not in result.stderr
    assert not (tmp_path / "x.db").exists(), "nothing starts on settings that do not parse"


def test_a_database_it_cannot_use_stops_it_with_one_line(tmp_path: Path) -> None:
    """Missing, refusing or closed: one line naming the database (not its password) and
    why, then a non-zero exit; for `migrate` and for `serve`, which migrates first."""
    cases = [
        (
            f"sqlite:///{tmp_path / 'missing-folder' / 'songbook.db'}",
            "SQLite: unable to open database file",
        ),
        (
            "postgresql://songbook:s3cret@127.0.0.1:1/songbook",
            "the connection was refused",
        ),
    ]
    runs = [(command, url, reason) for url, reason in cases for command in ("migrate", "serve")]

    def run(case: tuple[str, str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
        command, url, _ = case
        started = time.monotonic()
        return songbook(command, env={"DATABASE_URL": url}), time.monotonic() - started

    # At once: each is a process of its own, mostly importing.
    with ThreadPoolExecutor(len(runs)) as pool:
        results = list(pool.map(run, runs))
    for (command, _, reason), (result, seconds) in zip(runs, results, strict=True):
        assert result.returncode == 1, (command, result.stderr)
        line = one_line(result)
        assert line.startswith("songbook: cannot use the database "), line
        assert line.endswith(reason), line
        assert "s3cret" not in line
        assert seconds < 10


def test_a_missing_or_closed_postgresql_database_is_said_in_one_line(
    backend_name: str, postgres_databases: PostgresDatabases | None
) -> None:
    if backend_name != "postgresql":
        pytest.skip("PostgreSQL's databases")
    assert postgres_databases is not None
    url = postgres_databases.create()
    parts = sa.make_url(url)
    missing = parts.set(database=f"{parts.database}_missing").render_as_string(False)
    result = songbook("serve", env={"DATABASE_URL": missing})
    assert result.returncode == 1
    assert one_line(result).endswith("the database does not exist (SQLSTATE 3D000)")

    postgres_databases.run([f'ALTER DATABASE "{parts.database}" ALLOW_CONNECTIONS false'])
    try:
        result = songbook("migrate", env={"DATABASE_URL": url})
    finally:
        postgres_databases.run([f'ALTER DATABASE "{parts.database}" ALLOW_CONNECTIONS true'])
    assert result.returncode == 1
    assert one_line(result).endswith("the database is not accepting connections (SQLSTATE 55000)")
