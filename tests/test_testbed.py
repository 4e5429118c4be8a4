"""`chaos testbed up|status|down` as a user runs them, and the control's ownership rule."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.state import read_state
from tests.conftest import REPO

CHAOS = str(Path(sys.executable).with_name("chaos"))


def chaos(
    *args: str, home: Path, timeout_s: float = 120, log_file: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    """Run `chaos ARGS` as a user would, on the testbed home `home`, with `env` added
    (and its log in `log_file`, when given)."""
    log = ["--log-file", str(log_file)] if log_file else ["--no-log-file"]
    return subprocess.run(
        [CHAOS, "--no-version-check", *log, *args],
        cwd=REPO,
        env={**os.environ, "TESTBED_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def chaos_in_background(
    *args: str, home: Path, output: bool = False, **env: str
) -> subprocess.Popen:
    """Start `chaos ARGS` as a user would and leave it running (to signal it, or watch it
    ramp): its stdout and stderr together as text in `.stdout` with `output`, else
    discarded."""
    return subprocess.Popen(
        [CHAOS, "--no-version-check", "--no-log-file", *args],
        cwd=REPO,
        env={**os.environ, "TESTBED_HOME": str(home), **env},
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        text=True,
    )


def test_up_status_down_leaves_no_process(testbed_home: Path) -> None:
    up = chaos("testbed", "up", "--max-connections", "30", home=testbed_home)
    assert up.returncode == 0, up.stderr
    state = read_state()
    pids = [state[c]["pid"] for c in ("postgres", "connector", "service")]
    assert all(pid_alive(pid) for pid in pids)
    assert httpx.get(f"{state['service']['url']}/health").status_code == 200
    assert oct((testbed_home / "state.json").stat().st_mode)[-3:] == "600"

    status = chaos("testbed", "status", home=testbed_home)
    assert status.returncode == 0
    assert "healthy" in status.stdout and "max_connections=30" in status.stdout
    assert "2 instances" in status.stdout
    password = state["postgres"]["app_dsn"].split(":")[2].split("@")[0]
    assert password not in status.stdout
    # no session without a password, not even the superuser's, from anyone on the machine
    admin = (
        state["postgres"]["admin_dsn"]
        .replace(state["postgres"]["admin_dsn"].split(":")[2].split("@")[0], "", 1)
        .replace(":@", "@")
    )
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(asyncpg.connect(admin))

    again = chaos("testbed", "up", home=testbed_home)  # already up: nothing restarted
    assert again.returncode == 0
    assert read_state()["service"]["pid"] == state["service"]["pid"]

    down = chaos("testbed", "down", home=testbed_home)
    assert down.returncode == 0
    assert "Stopped: service, connector, postgres" in down.stdout
    assert not any(pid_alive(pid) for pid in pids)
    assert read_state() is None
    assert "The testbed is down" in chaos("testbed", "status", home=testbed_home).stdout
    assert "was not running" in chaos("testbed", "down", home=testbed_home).stdout


def test_up_with_an_unreachable_database_is_one_clear_error(testbed_home: Path) -> None:
    result = chaos(
        "testbed",
        "up",
        "--database-url",
        "postgresql://app:secret@127.0.0.1:1/app",
        home=testbed_home,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: --database-url / TESTBED_DATABASE_URL: cannot connect to "
        "postgresql://app:***@127.0.0.1:1/app (refused): check its host, port, database "
        "and credentials"
    ]
    assert "secret" not in result.stderr
    assert read_state() is None


def test_every_experiment_passes_chaos_validate(testbed_home: Path) -> None:
    experiments = sorted((REPO / "experiments").glob("*.json"))
    assert experiments
    for experiment in experiments:
        result = chaos("validate", str(experiment), home=testbed_home)
        assert result.returncode == 0, f"{experiment.name}: {result.stderr}"
        assert json.loads(experiment.read_text())["runtime"]["rollbacks"]["strategy"] == "always"
