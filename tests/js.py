"""The pinned JavaScript clients in tests/clients, run by the tests against a live server.

`npm ci` installs them from the lockfile once per test session (skipped when node_modules
already matches it); every script prints one JSON line, which `run` returns decoded.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "tests" / "clients"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _installed() -> bool:
    # npm writes this copy of the lockfile into node_modules on every install.
    marker = CLIENTS / "node_modules" / ".package-lock.json"
    lockfile = CLIENTS / "package-lock.json"
    return marker.is_file() and marker.stat().st_mtime >= lockfile.stat().st_mtime


def install() -> None:
    """`npm ci` in tests/clients unless its node_modules is already up to date."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed for the client tests (apt-get install nodejs npm)")
    if _installed():
        return
    completed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"npm ci in {CLIENTS} failed:\n{completed.stdout}\n{completed.stderr}")


def run(script: str, *args: str, timeout: float = 120, ok: tuple[int, ...] = (0,)) -> Any:
    """Run `node tests/clients/<script> args...` and return its JSON line."""
    completed = subprocess.run(
        ["node", str(CLIENTS / script), *args],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode not in ok or not lines:
        pytest.fail(
            f"{script} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return json.loads(lines[-1])
