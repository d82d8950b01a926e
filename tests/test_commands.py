"""The `songbook` command as a user runs it."""

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from graph.schema import schema
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


def test_bad_arguments_are_refused_clearly(tmp_path: Path) -> None:
    result = songbook(
        "seed", "--songs", "-5", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert result.returncode != 0
    assert "--songs must not be negative" in result.stderr
    bad_env = songbook("migrate", env={"SONGBOOK_DB_POOL_SIZE": "many"})
    assert bad_env.returncode != 0
    assert "SONGBOOK_DB_POOL_SIZE must be a whole number" in bad_env.stderr
    several_on_sqlite = songbook(
        "serve", "--workers", "2", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert several_on_sqlite.returncode != 0
    assert "several server processes need PostgreSQL" in several_on_sqlite.stderr
    assert not (tmp_path / "x.db").exists()
