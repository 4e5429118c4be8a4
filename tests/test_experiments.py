"""Whole experiments through `chaos run`, as a user runs them on a fresh clone (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.processes import pid_alive
from testbed.state import read_state
from tests.test_testbed import chaos

pytestmark = pytest.mark.slow


def _by_name(journal: dict) -> dict[str, dict]:
    return {run["activity"]["name"]: run for run in journal["run"] + journal["rollbacks"]}


def test_phase3_timeout_experiment_reproduces_and_cleans_up(
    testbed_home: Path, tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.json"
    result = chaos(
        "run", "--journal-path", str(journal_path), "experiments/smd-phase3-timeout.json",
        home=testbed_home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed"
    assert journal["steady_states"]["before"]["steady_state_met"] is True

    runs = _by_name(journal)
    flood = runs["flood-database-connections"]["output"]
    assert flood["established"] > 0 and flood["failed"]["too_many_connections"] > 0
    startup = runs["observe-fresh-instance-startup"]["output"]
    assert [p["status"] for p in startup["phases"]] == (
        ["succeeded", "succeeded", "timeout"] + ["blocked"] * 4
    )
    assert startup["failed_phase"]["cause"] == "too_many_connections"
    assert startup["exit_code"] == 3

    released = runs["stop-connection-flood"]
    assert released["status"] == "succeeded"
    assert released["output"]["released"] == flood["established"]

    # the control started the testbed for this run, so it took it down again
    assert read_state() is None
    instance_pid = runs["cold-start-fresh-instance"]["output"]["pid"]
    assert not pid_alive(instance_pid)
    # the application password never reaches the journal
    assert ":***@" in journal_path.read_text()
    assert "app:" not in journal_path.read_text().replace("app:***", "")


def test_a_testbed_started_by_hand_survives_the_run(testbed_home: Path, tmp_path: Path) -> None:
    assert chaos("testbed", "up", home=testbed_home).returncode == 0
    before = read_state()
    try:
        journal = str(tmp_path / "j.json")
        result = chaos(
            "run", "--journal-path", journal, "experiments/smd-phase3-timeout.json",
            home=testbed_home,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        after = read_state()
        assert after == before
        assert pid_alive(after["service"]["pid"]) and pid_alive(after["postgres"]["pid"])
    finally:
        chaos("testbed", "down", home=testbed_home)
