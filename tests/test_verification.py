"""Verdicts, guardrails, forced rollbacks and interruptions, from real runs of `chaos run`
on the embedded testbed (slow), and the expectation language on its own (fast)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.state import read_state
from chaoskit.verification.expectations import (
    ExpectationError,
    check_expectation,
    evaluate_expectation,
)
from chaoskit.verification.extension import read_extension
from chaoskit.verification.verdict import decide_verdict
from tests.conftest import REPO, eventually, leftovers, sessions
from tests.test_testbed import chaos, chaos_in_background


def run(experiment: str, home: Path, journal: Path, *extra: str, **env: str) -> tuple[int, dict]:
    result = chaos(
        "run", "--journal-path", str(journal), *extra, experiment, home=home, timeout_s=300, **env
    )
    return result.returncode, json.loads(journal.read_text())


def kit(journal: dict) -> dict:
    return journal["startup_chaos_kit"]


# --- the expectation language and the verdict rules (fast) ---------------------------

OUTPUTS = {
    "obs": {
        "phases": [{"status": s} for s in ("succeeded", "timeout", "blocked", "blocked")],
        "failure_at": "2026-01-01T00:00:05+00:00",
        "codes": {"3": 4},
        "held": 10,
    },
    "warn": {"at": "2026-01-01T00:00:01+00:00"},
}


def evaluate(expectation: dict, **configuration: object) -> dict:
    return evaluate_expectation(expectation, OUTPUTS, configuration)


def test_expectations_compare_paths_lists_timestamps_and_configuration_arithmetic() -> None:
    cases = [
        ({"observe": "obs.phases[2:].status", "expect": "all == blocked"}, True),
        ({"observe": "obs.phases.status", "expect": "any == timeout"}, True),
        ({"observe": "obs.codes.3", "expect": "== ${starts}"}, True),
        ({"observe": "obs.held", "expect": "== ${pool_size} + ${max_overflow}"}, True),
        ({"observe": "obs.held", "expect": "== (${pool_size} + 1) * 2"}, False),
        ({"observe_seconds_between": ["warn.at", "obs.failure_at"], "expect": ">= 3.5"}, True),
        ({"observe_ratio": ["obs.codes.3", "obs.held"], "expect": "== 0.4"}, True),
        ({"observe": "obs.failure_at", "expect": "> 0.7"}, False),
        ({"observe": "nothing.here", "expect": "> 0.7"}, False),
    ]
    for expectation, met in cases:
        result = evaluate(
            {"name": "x", "step": 3, **expectation}, starts=4, pool_size=6, max_overflow=4
        )
        assert result["met"] is met, (expectation, result)
    arithmetic = evaluate(
        {"name": "x", "observe": "obs.held", "expect": "== ${pool_size} + 4"}, pool_size=6
    )
    assert (arithmetic["expected"], arithmetic["observed"]) == ("== 10", 10)
    assert evaluate({"name": "x", "observe": "nothing.here", "expect": "> 1"})["missing"] is True


def test_kind_follows_the_failure_chain_unless_given() -> None:
    assert evaluate({"name": "a", "step": 1, "observe": "obs.held", "expect": "> 0"})["kind"] == (
        "pressure"
    )
    assert evaluate({"name": "b", "step": 3, "observe": "obs.held", "expect": "> 0"})["kind"] == (
        "outcome"
    )
    assert (
        evaluate(
            {"name": "c", "step": 2, "kind": "outcome", "observe": "obs.held", "expect": "> 0"}
        )["kind"]
        == "outcome"
    )


BAD_EXPECTATIONS = [
    ({"name": "x", "observe": "obs.held", "expect": "=~ 10"}, r"expect: '=~ 10': start with one"),
    ({"name": "x", "observe": "ghost.held", "expect": "> 0"}, r"the method has no activity"),
    ({"name": "x", "observe": "obs.failed_phase[[.status", "expect": "> 0"}, r"malformed path"),
    ({"name": "x", "observe": "obs.held", "expect": "== ${pool_sise}"}, r"\{pool_sise\} is not"),
    ({"name": "x", "observe": "obs.held", "expect": "> 0", "step": 7}, r"step: 7: give the"),
    ({"name": "x", "observe": "obs.held", "expect": "> 0", "kind": "cause"}, r"kind: 'cause'"),
    ({"name": "x", "expect": "> 0"}, r"observe: give one of `observe`"),
    ({"name": "x", "observe": "obs.held"}, r"expect: give an operator and a value"),
    ({"observe": "obs.held", "expect": "> 0"}, r"name: give every expectation a name"),
]


@pytest.mark.parametrize(("expectation", "message"), BAD_EXPECTATIONS)
def test_a_malformed_expectation_is_refused_in_one_line(expectation: dict, message: str) -> None:
    with pytest.raises(ExpectationError, match=message) as refused:
        check_expectation(expectation, "e.expectations[0]", {"obs", "warn"}, {"pool_size"})
    assert str(refused.value).startswith("e.expectations[0].")
    assert "\n" not in str(refused.value)


def _experiment(**extension: object) -> dict:
    return {
        "title": "t",
        "method": [{"type": "probe", "name": "obs"}],
        "configuration": {"pool_size": 5},
        "extensions": [{"name": "startup-chaos-kit", **extension}],
    }


STARTUP = {"observe": "obs.ready", "expect": "== true"}


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ({"recovery_timout_s": 5}, r"recovery_timout_s: unknown key \(did you mean recovery_"),
        ({"recovery_timeout_s": "soon"}, r"recovery_timeout_s: 'soon': give seconds"),
        ({"sample_interval_s": 0}, r"sample_interval_s: 0: give seconds"),
        ({"chain": {"name": "phase4-timeout", "startup": "obs"}}, r"chain: name 'phase4-timeout'"),
        (
            {"expectations": [{"name": "a", "observe": "obs.x", "expect": "> 0"}]},
            r"startup: say what counts as the startup having succeeded",
        ),
        ({"expectations": {"name": "a"}}, r"expectations: give a list"),
        (
            {
                "startup": STARTUP,
                "expectations": [
                    {"name": "a", "observe": "obs.x", "expect": "> 0"},
                    {"name": "a", "observe": "obs.y", "expect": "> 0"},
                ],
            },
            r"a declared twice",
        ),
    ],
)
def test_a_malformed_extension_is_refused_naming_the_experiment(
    extension: dict, message: str
) -> None:
    with pytest.raises(ExpectationError, match=message) as refused:
        read_extension(_experiment(**extension))
    assert str(refused.value).startswith("experiment 't': extensions.startup-chaos-kit.")


def test_a_named_chain_brings_its_expectations_and_its_startup() -> None:
    extension = read_extension(
        _experiment(chain={"name": "phase3-timeout", "startup": "obs", "cause": "x"})
    )
    assert [e["name"] for e in extension.expectations] == [
        "phase3_timeout",
        "phase3_is_database",
        "phase3_cause",
        "lifespan_startup_failed",
        "later_phases_blocked",
        "failure_exit_code",
        "fresh_instance_offline",
    ]
    assert {e["kind"] for e in extension.expectations} == {"outcome"}
    assert extension.startup == {"observe": "obs.ready", "expect": "== true"}
    without_cause = read_extension(_experiment(chain={"name": "phase3-timeout", "startup": "obs"}))
    assert "phase3_cause" not in [e["name"] for e in without_cause.expectations]


def _result(name: str, kind: str, met: bool) -> dict:
    return {"name": name, "kind": kind, "met": met, "expected": "== x", "observed": "y"}


_TASK_INTERRUPTED = """
import asyncio, gc, sys
import chaoskit.verification.control  # the kit's control, as every run loads it

async def task():
    raise {exception}

async def main():
    asyncio.get_running_loop().create_task(task())
    await asyncio.sleep(0.1)

try:
    asyncio.run(main())
except SystemExit:
    pass
gc.collect()
"""


@pytest.mark.parametrize(
    ("exception", "traceback"), [("SystemExit(20)", False), ("ValueError('a bug')", True)]
)
def test_an_interruption_inside_a_task_prints_no_traceback_but_a_bug_does(
    exception: str, traceback: bool
) -> None:
    """The watchdog's or a stop condition's SIGUSR1 may land inside an asyncio task."""
    result = subprocess.run(
        [sys.executable, "-c", _TASK_INTERRUPTED.format(exception=exception)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ("Task exception was never retrieved" in result.stderr) is traceback, result.stderr


def test_verdicts_follow_pressure_and_outcome() -> None:
    base = {"status": "completed", "steady_states": {"before": {"steady_state_met": True}}}
    ok = {"recovered": True, "recovery_timeout_s": 30}
    stuck = {"recovered": False, "recovery_timeout_s": 30}
    applied = _result("flood_applied", "pressure", True)
    not_applied = _result("flood_applied", "pressure", False)
    phase3 = _result("phase3_timeout", "outcome", True)
    other_cause = _result("phase3_cause", "outcome", False)
    up, down = _result("s", "outcome", True), _result("s", "outcome", False)
    traceback = ["Traceback (most recent call last):\n", "ActivityFailed: boom\n"]
    failed_run = {
        **base,
        "run": [{"status": "failed", "activity": {"name": "x"}, "exception": traceback}],
    }

    def verdict(
        journal: dict,
        results: list,
        startup: dict | None,
        recovery: dict | None = ok,
        interruption: str | None = None,
        dry: bool = False,
    ) -> str:
        return decide_verdict(journal, results, startup, recovery, interruption, dry)[0]

    assert verdict(base, [applied, phase3], down) == "reproduced"
    assert verdict(base, [applied, phase3, other_cause], down) == "deviated"
    assert verdict(base, [applied, phase3], up) == "tolerated"
    assert verdict(base, [not_applied, phase3], down) == "inconclusive"
    assert verdict(base, [not_applied, phase3], up) == "inconclusive"
    assert verdict(base, [applied, phase3], down, dry=True) == "inconclusive"
    assert verdict(base, [], None) == "inconclusive"
    assert verdict(base, [applied, phase3], {**down, "missing": True}) == "inconclusive"
    assert verdict(base, [applied, phase3], down, stuck) == "not-recovered"
    assert verdict(failed_run, [applied, phase3], down, stuck) == "error"
    assert verdict(base, [applied, phase3], down, interruption="guardrail refused 'x'") == (
        "aborted"
    )
    reason = decide_verdict(base, [applied, phase3, other_cause], down, ok, None)[1]
    assert reason == "the startup failed, but not as declared: phase3_cause expected == x, " + (
        "observed y"
    )


# --- verdicts from real runs (slow) ------------------------------------------------------

slow = pytest.mark.slow


@slow
def test_enough_capacity_is_tolerated(testbed_home: Path, tmp_path: Path) -> None:
    # the same experiment, with a flood too small to exhaust the database
    code, journal = run(
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        CHAOS_FLOOD_CONNECTIONS="10",
    )
    assert code == 0
    assert kit(journal)["verdict"] == "tolerated"
    assert kit(journal)["reason"].startswith("the startup succeeded under pressure")
    assert not any(e["met"] for e in kit(journal)["expectations"] if e["kind"] == "outcome")
    observed = journal["run"][-1]["output"]
    assert observed["ready"] is True and observed["exit_code"] is None


@slow
def test_a_flood_that_holds_nothing_is_inconclusive_not_tolerated(
    testbed_home: Path, tmp_path: Path
) -> None:
    # every connection of the flood fails authentication: no pressure was applied
    state = testbed_up()
    try:
        wrong = state["postgres"]["app_dsn"].replace("app:", "app:wrong", 1).split("@")
        code, journal = run(
            "experiments/smd-phase3-timeout.json",
            testbed_home,
            tmp_path / "j.json",
            CHAOS_DIRECT_DATABASE_URL=f"postgresql://app:wrong@{wrong[-1]}",
        )
    finally:
        testbed_down()
    assert code == 1
    assert kit(journal)["verdict"] == "inconclusive"
    assert kit(journal)["reason"] == (
        "pressure not applied as declared: flood_applied expected == true, observed false"
    )
    flood = journal["run"][0]["output"]
    assert flood["established"] == 0 and flood["failed"] == {"auth_failed": 120}
    assert "wrong" not in (tmp_path / "j.json").read_text()


@slow
def test_a_dry_run_is_inconclusive(testbed_home: Path, tmp_path: Path) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        "--dry",
        "activities",
    )
    assert code == 1
    assert (kit(journal)["verdict"], kit(journal)["reason"]) == (
        "inconclusive",
        "a dry run: no activity was applied",
    )


BAD_EXTENSIONS = {
    "operator": (
        {
            "expectations": [
                {
                    "name": "x",
                    "step": 2,
                    "observe": "flood-database-connections.applied",
                    "expect": "=~ true",
                }
            ]
        },
        "expect: '=~ true': start with one of",
    ),
    "activity": (
        {
            "expectations": [
                {"name": "x", "step": 2, "observe": "flood-everything.applied", "expect": "== true"}
            ]
        },
        "the method has no activity 'flood-everything'",
    ),
    "path": (
        {
            "expectations": [
                {
                    "name": "x",
                    "step": 3,
                    "observe": "observe-fresh-instance-startup.failed_phase[[.status",
                    "expect": "== timeout",
                }
            ]
        },
        "malformed path",
    ),
    "key": (
        {
            "expectations": [
                {
                    "name": "x",
                    "step": 2,
                    "observe": "flood-database-connections.established",
                    "expect": "== ${flood_conections}",
                }
            ]
        },
        "${flood_conections} is not a configuration key",
    ),
    "step": (
        {
            "expectations": [
                {
                    "name": "x",
                    "step": 9,
                    "observe": "flood-database-connections.established",
                    "expect": "> 0",
                }
            ]
        },
        "step: 9: give the failure chain's step, 1 to 6",
    ),
    "extension-key": ({"recovery_timout_s": 5}, "unknown key (did you mean recovery_timeout_s?)"),
    "setting-type": ({"recovery_timeout_s": "soon"}, "recovery_timeout_s: 'soon': give seconds"),
    "stop-condition": (
        {"stop_conditions": {"pool": 90}},
        "startup-chaos-kit.stop_conditions.pool is not a stop condition",
    ),
    "expect": (
        {"expect": "passed"},
        "startup-chaos-kit.expect: 'passed': use one of reproduced, tolerated, deviated",
    ),
}


def _with_extension(tmp_path: Path, extra: dict) -> Path:
    experiment = json.loads((REPO / "experiments" / "smd-phase3-timeout.json").read_text())
    extension = experiment["extensions"][0]
    for key, value in extra.items():
        extension[key] = [*extension.get(key, []), *value] if key == "expectations" else value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(experiment))
    return path


@pytest.mark.parametrize("fault", BAD_EXTENSIONS)
def test_chaos_validate_and_chaos_run_refuse_a_bad_expectation(
    testbed_home: Path, tmp_path: Path, fault: str
) -> None:
    extra, message = BAD_EXTENSIONS[fault]
    experiment = _with_extension(tmp_path, extra)
    validated = chaos("validate", str(experiment), home=testbed_home)
    assert validated.returncode == 1
    errors = [line for line in validated.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and message in errors[0], validated.stderr
    assert 'experiment "Phase 3 (database) times out' in errors[0]
    ran = chaos(
        "run", "--journal-path", str(tmp_path / "j.json"), str(experiment), home=testbed_home
    )
    assert ran.returncode == 1 and message in ran.stderr
    assert not (tmp_path / "j.json").exists()  # refused before anything ran
    assert not (testbed_home / "state.json").exists()


def test_an_expectation_that_is_no_verdict_is_one_line_before_anything_runs(
    testbed_home: Path, tmp_path: Path
) -> None:
    experiment = "experiments/smd-phase3-timeout.json"
    message = "CHAOS_EXPECT='pass' is not a verdict to expect: use one of reproduced, tolerated"
    journal = tmp_path / "j.json"
    for args in (("validate",), ("run", "--journal-path", str(journal))):
        refused = chaos(*args, experiment, home=testbed_home, CHAOS_EXPECT="pass")
        errors = [line for line in refused.stderr.splitlines() if "ERROR" in line]
        assert refused.returncode == 1 and len(errors) == 1, refused.stderr
        assert message in errors[0] and "Traceback" not in refused.stderr
    assert not journal.exists() and not (testbed_home / "state.json").exists()
    # a var-file's is refused the same way, by the run itself when it skips validation
    var_file = tmp_path / "expect.json"
    var_file.write_text(json.dumps({"configuration": {"expect": "green"}}))
    code, ran = run(
        experiment, testbed_home, journal, "--no-validation", "--var-file", str(var_file)
    )
    assert code == 1 and kit(ran)["verdict"] == "aborted" and ran["run"] == []
    assert kit(ran)["reason"].startswith("expect='green' is not a verdict to expect")
    assert not (testbed_home / "state.json").exists()
    accepted = chaos("validate", experiment, home=testbed_home, CHAOS_EXPECT="not-recovered")
    assert accepted.returncode == 0, accepted.stderr


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
        "recovered": False,
        "time_to_recover_s": None,
        "recovery_timeout_s": 2.0,
        "attempts": kit(journal)["recovery"]["attempts"],
    }
    assert read_state() is None  # the lock was released and the testbed taken down


@slow
def test_failing_activity_is_an_error(testbed_home: Path, tmp_path: Path) -> None:
    code, journal = run(
        "tests/experiments/forgotten-rollback.json",
        testbed_home,
        tmp_path / "j.json",
        CHAOS_LOCK_TABLE="no_such_table",
    )
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
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        CHAOS_SERVICE_URL="http://127.0.0.1:1",
    )
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
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        CHAOS_FLOOD_CONNECTIONS="5000",
    )
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
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        CHAOS_DIRECT_DATABASE_URL="postgresql://app:hunter2@10.20.30.40:5432/app",
    )
    assert code == 1
    assert "is not loopback" in kit(journal)["reason"]
    assert "hunter2" not in (tmp_path / "j.json").read_text()


@slow
def test_rollbacks_run_even_when_the_caller_asks_for_none(
    testbed_home: Path, tmp_path: Path
) -> None:
    code, journal = run(
        "experiments/smd-phase3-timeout.json",
        testbed_home,
        tmp_path / "j.json",
        "--rollback-strategy",
        "never",
    )
    assert code == 0
    assert kit(journal)["rollbacks_forced"] is True
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == [
        "stop-connection-flood",
        "stop-fresh-instance",
    ]
    assert journal["rollbacks"][0]["output"]["released"] > 0
    assert kit(journal)["verdict"] == "reproduced"


@slow
def test_run_watchdog_interrupts_with_rollbacks(testbed_home: Path, tmp_path: Path) -> None:
    # the watchdog counts from the method's start, whatever the testbed took to come up
    var_file = tmp_path / "short.json"
    var_file.write_text(json.dumps({"configuration": {"guardrails": {"max_run_duration_s": 4}}}))
    code, journal = run(
        "experiments/lifespan-exit-code.json",
        testbed_home,
        tmp_path / "j.json",
        "--var-file",
        str(var_file),
    )
    assert code == 1
    assert kit(journal)["verdict"] == "aborted"
    assert kit(journal)["reason"] == "interrupted at max_run_duration_s=4"
    assert journal["rollbacks"][0]["output"]["running"] is True  # the flood was released
    assert read_state() is None
    assert leftovers(testbed_home) == []


@slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_method_still_rolls_back_and_leaves_nothing(
    testbed_home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    admin = testbed_up()["postgres"]["admin_dsn"]
    journal_path = tmp_path / "j.json"
    try:
        process = chaos_in_background(
            "run",
            "--journal-path",
            str(journal_path),
            "experiments/lifespan-exit-code.json",
            home=testbed_home,
        )
        # into the cold starts: the flood holds, an instance of the run is starting
        assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
        assert eventually(lambda: sessions(admin, "service-cold-start-") > 0, timeout_s=60)
        process.send_signal(signum)
        assert process.wait(timeout=120) != 0
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "interrupted"
        assert kit(journal)["verdict"] == "aborted"
        assert journal["rollbacks"][0]["activity"]["name"] == "stop-connection-flood"
        assert eventually(lambda: sessions(admin, "chaos-") == 0, timeout_s=10)
        assert eventually(lambda: leftovers(testbed_home) == [], timeout_s=10)
    finally:
        testbed_down()


@slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_verification_still_writes_the_journal_whole(
    testbed_home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    admin = testbed_up()["postgres"]["admin_dsn"]
    journal_path = tmp_path / "j.json"
    try:
        process = chaos_in_background(
            "run",
            "--journal-path",
            str(journal_path),
            "experiments/smd-phase3-timeout.json",
            home=testbed_home,
        )
        # the flood held, was rolled back, and the recovery's fresh instance is starting
        assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
        assert eventually(lambda: sessions(admin, "chaos-flood-") == 0, timeout_s=60)
        assert eventually(lambda: sessions(admin, "service-cold-start-") > 0, timeout_s=60)
        process.send_signal(signum)
        assert process.wait(timeout=120) == 1
        journal = json.loads(journal_path.read_text())
        assert journal["status"] == "interrupted"
        assert kit(journal)["verdict"] == "aborted"
        assert kit(journal)["reason"] == (f"interrupted by {signum.name} during the verification")
        assert [r["status"] for r in journal["rollbacks"]] == ["succeeded", "succeeded"]
        assert eventually(lambda: leftovers(testbed_home) == [], timeout_s=10)
    finally:
        testbed_down()


@slow
def test_a_testbed_whose_run_was_killed_is_taken_over_by_the_next(
    testbed_home: Path, tmp_path: Path
) -> None:
    process = chaos_in_background(
        "run",
        "--journal-path",
        str(tmp_path / "killed.json"),
        "experiments/lifespan-exit-code.json",
        home=testbed_home,
    )
    assert eventually(lambda: (read_state() or {}).get("owner_pid") == process.pid, timeout_s=60)
    admin = read_state()["postgres"]["admin_dsn"]
    assert eventually(lambda: sessions(admin, "chaos-flood-") > 0, timeout_s=60)
    process.kill()
    process.wait()
    orphan = read_state()
    status = chaos("testbed", "status", home=testbed_home)
    assert f"Started by a run that is gone (pid {process.pid})" in status.stdout
    # the killed run's workers and instances release by themselves
    assert eventually(lambda: leftovers(testbed_home) == [], timeout_s=30)
    code, journal = run("experiments/smd-phase3-timeout.json", testbed_home, tmp_path / "next.json")
    assert code == 0 and kit(journal)["verdict"] == "reproduced"
    assert read_state() is None  # the next run took it over, and stopped it at its end
    assert not pid_alive(orphan["service"]["pid"]) and not pid_alive(orphan["connector"]["pid"])


@slow
def test_interrupts_at_random_moments_leave_nothing_and_a_whole_journal_or_none(
    testbed_home: Path, tmp_path: Path
) -> None:
    state = testbed_up()
    admin, connector_url = state["postgres"]["admin_dsn"], state["connector"]["url"]
    seed = random.randrange(1_000_000)
    chance = random.Random(seed)
    try:
        for trial in range(6):
            signum = chance.choice([signal.SIGINT, signal.SIGTERM])
            delay_s = chance.uniform(0.0, 10.0)
            journal_path = tmp_path / f"trial-{trial}.json"
            process = chaos_in_background(
                "run",
                "--journal-path",
                str(journal_path),
                "experiments/vpc-connector-concurrent-connections.json",
                home=testbed_home,
            )
            if process.poll() is None:
                time.sleep(delay_s)  # a random moment of the run: what is asserted is not time
                process.send_signal(signum)
            process.wait(timeout=120)
            where = f"seed {seed}, trial {trial}: {signum.name} after {delay_s:.2f}s"
            if journal_path.exists():  # whole, or not written at all
                journal = json.loads(journal_path.read_text())
                assert "startup_chaos_kit" in journal, where
            assert eventually(lambda: sessions(admin, "chaos-flood-") == 0, timeout_s=15), where
            assert eventually(lambda: leftovers(testbed_home) == [], timeout_s=15), where
            drift = ConnectorClient(connector_url).state()["drift"]
            assert drift in ([], ["autoscaler_clock"]), where  # the next run resets the clock
    finally:
        testbed_down()
