"""Look before touching: `--dry-run` of `chaos gameday run`, `limit` and `recommend
--verify` checks everything a run checks first and says what would run, then stops:
no process, database session or file of the target changes (compared before and after
on a testbed of the test's own), on the embedded testbed and on staging's fake."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chaoskit.gameday.limit import most_probes
from chaoskit.gameday.suite import load_suite
from chaoskit.kit.lock import TargetLock
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.state import read_state
from chaoskit.verification.extension import read_extension
from tests.conftest import REPO, leftovers
from tests.test_staging import staging_game_day_without_a_role
from tests.test_testbed import chaos

SMD = REPO / "experiments" / "smd-phase3-timeout.json"


def _default(experiment: Path, key: str) -> Any:
    return json.loads(experiment.read_text())["configuration"][key]["default"]


def _files(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folders` with its size and modification time; the embedded
    PostgreSQL's data and the logs are left out: the database writes its own files as it
    goes, and a service logs each request it answers, the preflight's health check too."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else ():
            relative = path.relative_to(folder)
            if path.is_file() and relative.parts[0] != "postgres" and path.suffix != ".log":
                found[str(path)] = (path.stat().st_size, path.stat().st_mtime_ns)
    return found


def _processes(home: Path) -> tuple[list[int], list[str]]:
    """The testbed's processes, and any process a run on it started and left (a flood's
    worker, a service instance: they inherit its TESTBED_HOME)."""
    state = read_state()
    return [state[c]["pid"] for c in ("postgres", "connector", "service")], leftovers(home)


def _database_sessions(admin_dsn: str) -> set[tuple[int, str, str]]:
    async def read() -> set[tuple[int, str, str]]:
        conn = await asyncpg.connect(admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid, application_name, backend_start::text FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return {(r["pid"], r["application_name"], r["backend_start"]) for r in rows}

    return asyncio.run(read())


def _rows(out: str) -> list[list[str]]:
    """The cells of each run's row in the plan's table (its first line)."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in out.splitlines()
        if re.match(r"^│ \d+ +│", line)
    ]


# --- on a testbed that is down, and with mistakes: nothing started (fast) ----------------


def test_a_dry_run_game_day_on_a_testbed_that_is_down_starts_nothing(
    testbed_home: Path, tmp_path: Path
) -> None:
    journals = tmp_path / "journals"
    result = chaos("gameday", "run", "--dry-run", "--journals", str(journals), home=testbed_home)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nothing is started, locked or written" in out
    suite = [e.name for e in load_suite(REPO / "experiments" / "gameday.toml").experiments]
    rows = _rows(out)
    assert [row[1] for row in rows] == suite  # in the suite's order
    assert all(row[2] == "reproduced" and row[-1] == "ok" for row in rows)
    assert "At most 90 min: the suite's time_limit_min" in out
    assert "the embedded testbed is down: the command would start it" in out
    assert f"Nothing in the way: {len(suite)} runs would start." in out
    assert not testbed_home.exists() and not journals.exists()


def test_a_dry_run_names_each_run_the_guardrails_would_refuse(
    testbed_home: Path, tmp_path: Path
) -> None:
    # a limit one connection short of the flood the first experiment declares, and above
    # the second's
    flood = _default(SMD, "flood_connections")
    smaller = REPO / "experiments" / "vpc-connector-concurrent-connections.json"
    assert _default(smaller, "flood_connections") < flood - 1
    profile = tmp_path / "tight.json"
    profile.write_text(
        json.dumps({"configuration": {"guardrails": {"max_database_connections": flood - 1}}})
    )
    result = chaos(
        "gameday",
        "run",
        "--dry-run",
        "--only",
        SMD.stem,
        "--only",
        smaller.stem,
        "--profile",
        str(profile),
        home=testbed_home,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert [(row[1], row[-1]) for row in _rows(result.stdout)] == [
        (SMD.stem, "REFUSED (below)"),
        (smaller.stem, "ok"),
    ]
    assert (
        "smd-phase3-timeout: refused: guardrail refused 'flood-database-connections': it "
        f"would open {flood} database connections, more than max_database_connections="
        f"{flood - 1}"
    ) in result.stdout
    assert "1 of 2 runs would be refused before they start." in result.stdout
    assert not testbed_home.exists()


def test_a_dry_run_sweep_counts_its_probes_and_checks_both_ends(
    testbed_home: Path, tmp_path: Path
) -> None:
    knob = read_extension(json.loads(SMD.read_text())).knobs["flood_connections"]
    cap = 1000  # the kit's default max_database_connections: the far end goes past it
    result = chaos(
        "gameday",
        "limit",
        "--dry-run",
        str(SMD),
        "--to",
        str(cap + 1),
        "--repeat",
        "2",
        "--journals",
        str(tmp_path / "j"),
        home=testbed_home,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    probes = most_probes(knob, knob.low, cap + 1, 2)
    assert f"At most {probes} probes" in result.stdout
    low, high = _rows(result.stdout)
    assert (low[3], low[-1]) == (f"flood_connections={knob.value(knob.low)}", "ok")
    assert (high[3], high[-1]) == (f"flood_connections={cap + 1}", "REFUSED (below)")
    assert f"at flood_connections={cap + 1}: refused: guardrail refused" in result.stdout
    assert not testbed_home.exists() and not (tmp_path / "j").exists()


def test_a_dry_run_while_another_run_holds_the_target_says_who(
    testbed_home: Path, tmp_path: Path
) -> None:
    lock = testbed_home / "embedded.lock"
    with TargetLock(lock, "game day gd-holding"):
        before = lock.stat().st_mtime_ns
        result = chaos(
            "gameday", "run", "--dry-run", "--only", "smd-phase3-timeout", home=testbed_home
        )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Lock: held by game day gd-holding (pid " in result.stdout
    assert lock.stat().st_mtime_ns == before


def test_a_staging_dry_run_reports_a_missing_role_and_changes_nothing(
    testbed_home: Path, tmp_path: Path, key_pem: str
) -> None:
    journals = tmp_path / "journals"
    result, changes = staging_game_day_without_a_role(
        testbed_home, tmp_path, key_pem, "--dry-run", "--journals", str(journals)
    )
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout.replace("\n", " ")
    assert "what would run, in order, on staging" in out
    assert "the kit's account lacks run.services.update on service " in out
    assert "The target fails its preflight: the command would skip it." in out
    assert changes == [] and not journals.exists()


@pytest.fixture(scope="module")
def key_pem() -> str:
    from tests.gcp_fake import private_key_pem

    return private_key_pem()


# --- on a testbed that is up: nothing of it changes (slow) -------------------------------


@pytest.mark.slow
def test_dry_runs_change_no_process_session_or_file(testbed_home: Path, tmp_path: Path) -> None:
    state = testbed_up()
    try:
        # a reproduction for `recommend` to answer: a folder's run names its file
        journals, folder = tmp_path / "journals", tmp_path / "experiments"
        folder.mkdir()
        shutil.copy(SMD, folder)
        ran = chaos(
            "run", "--journal-path", str(journals), str(folder), home=testbed_home, timeout_s=300
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        admin = state["postgres"]["admin_dsn"]
        before = (
            _processes(testbed_home),
            _database_sessions(admin),
            _files(journals, testbed_home),
        )
        commands = [
            ("gameday", "run", "--dry-run", "--journals", str(journals)),
            ("gameday", "limit", "--dry-run", str(SMD), "--journals", str(journals)),
            (
                "gameday",
                "recommend",
                str(journals),
                "--verify",
                "--dry-run",
                "-o",
                str(journals / "remediation.json"),
                "--journals",
                str(journals),
            ),
        ]
        for command in commands:
            result = chaos(*command, home=testbed_home)
            assert result.returncode == 0, result.stdout + result.stderr
            out = result.stdout
            assert "the embedded testbed is up, at its baseline" in out, out
            for check in ("service", "database", "connector"):
                assert f"Preflight {check}: ok" in out
        assert "verify" not in out.split("Dry run")[0]  # nothing verified, only planned
        assert "database_max_connections=" in out  # the recommendation, layered on
        after = (
            _processes(testbed_home),
            _database_sessions(admin),
            _files(journals, testbed_home),
        )
        assert after[0] == before[0], "a process started or stopped"
        assert after[1] == before[1], "a database session opened or closed"
        assert after[2] == before[2], "a file was written"
    finally:
        testbed_down()
