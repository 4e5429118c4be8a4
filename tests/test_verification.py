"""Verdicts, guardrails, forced rollbacks and interruptions, from real runs of `chaos run`
on the embedded testbed (slow), and the expectation language on its own (fast)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.state import read_state
from chaoskit.verification.expectations import ExpectationError, evaluate_expectations
from chaoskit.verification.verdict import decide_verdict
from tests.conftest import REPO, eventually, sessions
from tests.test_testbed import CHAOS, chaos


def run(experiment: str, home: Path, journal: Path, *extra: str, **env: str) -> tuple[int, dict]:
    result = chaos(
        "run", "--journal-path", str(journal), *extra, experiment, home=home, timeout_s=300, **env
    )
    return result.returncode, json.loads(journal.read_text())


def kit(journal: dict) -> dict:
    return journal["startup_chaos_kit"]


# --- the expectation language and the verdict rules (fast) ---------------------------


def test_expectations_compare_paths_lists_and_timestamps() -> None:
    journal = {
        "run": [
            {"activity": {"name": "obs"}, "output": {
                "phases": [{"status": s} for s in ("succeeded", "timeout", "blocked", "blocked")],
                "failure_at": "2026-01-01T00:00:05+00:00", "codes": {"3": 4}}},
            {"activity": {"name": "warn"}, "output": {"at": "2026-01-01T00:00:01+00:00"}},
        ]
    }  # fmt: skip
    results = evaluate_expectations(
        [
            {"name": "blocked", "observe": "obs.phases[2:].status", "expect": "all == blocked"},
            {"name": "some_timeout", "observe": "obs.phases.status", "expect": "any == timeout"},
            {"name": "codes", "observe": "obs.codes.3", "expect": "== ${starts}"},
            {"name": "lead", "observe_seconds_between": ["warn.at", "obs.failure_at"],
             "expect": ">= 3.5"},
            {"name": "absent", "observe": "nothing.here", "expect": "> 0.7"},
            {"name": "wrong_type", "observe": "obs.failure_at", "expect": "> 0.7"},
        ],
        journal,
        {"starts": 4},
    )  # fmt: skip
    assert [(r["name"], r["met"]) for r in results] == [
        ("blocked", True), ("some_timeout", True), ("codes", True), ("lead", True),
        ("absent", False), ("wrong_type", False),
    ]  # fmt: skip
    assert results[3]["observed"] == 4.0
    assert results[4]["missing"] is True


def test_malformed_expectation_names_itself() -> None:
    with pytest.raises(ExpectationError, match=r"^expectation 'x': give one of `observe`"):
        evaluate_expectations([{"name": "x", "expect": "> 1"}], {"run": []})
    with pytest.raises(ExpectationError, match=r"`expect` is missing"):
        evaluate_expectations([{"name": "y", "observe": "a.b"}], {"run": []})


def test_verdict_precedence() -> None:
    met = [{"name": "a", "met": True, "expected": "1", "observed": 1}]
    unmet = [{"name": "a", "met": False, "expected": "== 3", "observed": 0}]
    ok = {"recovered": True, "recovery_timeout_s": 30}
    stuck = {"recovered": False, "recovery_timeout_s": 30}
    base = {"status": "completed", "steady_states": {"before": {"steady_state_met": True}}}
    traceback = ["Traceback (most recent call last):\n", "ActivityFailed: boom\n"]
    failure = {"status": "failed", "activity": {"name": "x"}, "exception": traceback}
    failed_run = {**base, "run": [failure]}
    assert decide_verdict(base, met, ok, None)[0] == "reproduced"
    assert decide_verdict(base, unmet, ok, None) == ("tolerated", "a expected == 3, observed 0")
    assert decide_verdict(base, met, stuck, None)[0] == "not-recovered"
    assert decide_verdict(failed_run, met, stuck, None) == ("error", "x: ActivityFailed: boom")
    assert decide_verdict(base, met, ok, "guardrail refused 'x'") == (
        "aborted",
        "guardrail refused 'x'",
    )


# --- verdicts from real runs (slow) ------------------------------------------------------

slow = pytest.mark.slow


@slow
def test_enough_capacity_is_tolerated(testbed_home: Path, tmp_path: Path) -> None:
    # the same experiment, with a flood too small to exhaust the database
    code, journal = run(
        "experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "j.json",
        CHAOS_FLOOD_CONNECTIONS="10",
    )  # fmt: skip
    assert code == 0
    assert kit(journal)["verdict"] == "tolerated"
    assert kit(journal)["reason"].startswith("database_refuses_connections expected > 0")
    assert not any(e["met"] for e in kit(journal)["expectations"] if e["step"] in (3, 5))
    observed = journal["run"][-1]["output"]
    assert observed["ready"] is True and observed["exit_code"] is None


@slow
def test_forgotten_rollback_is_not_recovered_and_fails_the_run(
    testbed_home: Path, tmp_path: Path
) -> None:
    code, journal = run(
        "tests/experiments/forgotten-rollback.json", testbed_home, tmp_path / "j.json"
    )
    assert code == 1
    assert journal["status"] == "failed"
    assert kit(journal)["verdict"] == "not-recovered"
    assert kit(journal)["recovery"] == {
        "recovered": False, "time_to_recover_s": None, "recovery_timeout_s": 2.0,
        "attempts": kit(journal)["recovery"]["attempts"],
    }  # fmt: skip
    assert read_state() is None  # the lock was released and the testbed taken down


@slow
def test_failing_activity_is_an_error(testbed_home: Path, tmp_path: Path) -> None:
    code, journal = run(
        "tests/experiments/forgotten-rollback.json", testbed_home, tmp_path / "j.json",
        CHAOS_LOCK_TABLE="no_such_table",
    )  # fmt: skip
    assert code == 1
    assert kit(journal)["verdict"] == "error"
    assert kit(journal)["reason"] == (
        "lock-schema-migrations: chaoslib.exceptions.ActivityFailed: "
        "table='no_such_table' does not exist in that database"
    )


@slow
def test_steady_state_not_met_before_is_aborted_not_a_pass(
    testbed_home: Path, tmp_path: Path
) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "j.json",
        CHAOS_SERVICE_URL="http://127.0.0.1:1",
    )  # fmt: skip
    assert code == 1
    assert journal["status"] == "aborted"
    assert kit(journal)["verdict"] == "aborted"
    assert kit(journal)["reason"] == (
        "steady state not met before the method: running-service-is-healthy"
    )
    assert journal["run"] == []


@slow
def test_guardrail_refusal_changes_nothing(testbed_home: Path, tmp_path: Path) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "j.json",
        CHAOS_FLOOD_CONNECTIONS="5000",
    )  # fmt: skip
    assert code == 1
    assert journal["status"] == "interrupted"
    assert kit(journal)["verdict"] == "aborted"
    assert kit(journal)["reason"].startswith(
        "guardrail refused 'flood-database-connections': it would open 5000 database "
        "connections, more than max_database_connections=1000"
    )
    assert journal["run"] == [] and journal["rollbacks"] == []
    assert read_state() is None  # not even the testbed was started


@slow
def test_guardrail_refuses_a_non_loopback_database_and_keeps_its_password(
    testbed_home: Path, tmp_path: Path
) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "j.json",
        CHAOS_DIRECT_DATABASE_URL="postgresql://app:hunter2@10.20.30.40:5432/app",
    )  # fmt: skip
    assert code == 1
    assert "is not loopback" in kit(journal)["reason"]
    assert "hunter2" not in (tmp_path / "j.json").read_text()


@slow
def test_rollbacks_run_even_when_the_caller_asks_for_none(
    testbed_home: Path, tmp_path: Path
) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "j.json",
        "--rollback-strategy", "never",
    )  # fmt: skip
    assert code == 0
    assert kit(journal)["rollbacks_forced"] is True
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == [
        "stop-connection-flood", "stop-fresh-instance",
    ]  # fmt: skip
    assert journal["rollbacks"][0]["output"]["released"] > 0
    assert kit(journal)["verdict"] == "reproduced"


@slow
def test_run_watchdog_interrupts_with_rollbacks(testbed_home: Path, tmp_path: Path) -> None:
    var_file = tmp_path / "short.json"
    var_file.write_text(json.dumps({"configuration": {"guardrails": {"max_run_duration_s": 4}}}))
    code, journal = run(
        "experiments/lifespan-exit-code.json", testbed_home, tmp_path / "j.json",
        "--var-file", str(var_file),
    )  # fmt: skip
    assert code == 1
    assert kit(journal)["verdict"] == "aborted"
    assert kit(journal)["reason"] == "interrupted at max_run_duration_s=4"
    assert journal["rollbacks"][0]["output"]["running"] is True  # the flood was released
    assert read_state() is None


@slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_method_still_rolls_back_and_leaves_nothing(
    testbed_home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    admin = testbed_up()["postgres"]["admin_dsn"]
    journal_path = tmp_path / "j.json"
    try:
        process = subprocess.Popen(
            [CHAOS, "--no-version-check", "--no-log-file", "run", "--journal-path",
             str(journal_path), "experiments/lifespan-exit-code.json"],
            cwd=REPO, env={**os.environ, "TESTBED_HOME": str(testbed_home)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
        time.sleep(1.0)  # into the cold starts
        process.send_signal(signum)
        assert process.wait(timeout=120) != 0
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "interrupted"
        assert kit(journal)["verdict"] == "aborted"
        assert journal["rollbacks"][0]["activity"]["name"] == "stop-connection-flood"
        assert eventually(lambda: sessions(admin, "chaos-") == 0, timeout_s=10)
        leftovers = subprocess.run(
            ["pgrep", "-f", "chaos-flood-|cold-start-"], capture_output=True, text=True
        ).stdout.split()
        assert [pid for pid in leftovers if pid_alive(int(pid))] == []
    finally:
        testbed_down()
