"""The pinned JavaScript clients in tests/clients, run by the tests against a live server.

`npm ci` installs them from the lockfile once per test session (skipped when node_modules
already matches it); every script prints one JSON line, which `run` returns decoded.
"""

import json
import os
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


def run(script: str, *args: str, timeout: float = 120) -> Any:
    """Run `node tests/clients/<script> args...` and return its JSON line."""
    return finish(start(script, *args), timeout)


def start(script: str, *args: str, **env: str) -> "subprocess.Popen[str]":
    """Start a client script in the background; `finish` collects its JSON line."""
    return subprocess.Popen(
        ["node", str(CLIENTS / script), *args],
        cwd=CLIENTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(process: "subprocess.Popen[str]", timeout: float = 120) -> Any:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        pytest.fail(
            f"{process.args!r} exited {process.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )
    return json.loads(lines[-1])
