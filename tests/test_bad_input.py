"""A user's mistake is one clear line naming the field and the fix, a non-zero exit, and
nothing started or changed: no testbed, no journal of a run that went on with defaults,
no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.state import read_state
from tests.conftest import REPO
from tests.test_testbed import chaos

SMD = "experiments/smd-phase3-timeout.json"


def refused_run(home: Path, tmp_path: Path, *args: str, **env: str) -> str:
    """`chaos run` of the Phase 3 experiment, refused before anything ran: its reason."""
    journal = tmp_path / "journal.json"
    result = chaos("run", "--journal-path", str(journal), *args, SMD, home=home, **env)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    kit = json.loads(journal.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted"
    assert json.loads(journal.read_text())["run"] == []
    assert not (home / "state.json").exists()  # not even the testbed was started
    return kit["reason"]


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"CHAOS_POOL_SIZE": "abc"}, "CHAOS_POOL_SIZE='abc' is not a whole number: give e.g. 5"),
        ({"CHAOS_RECOVERY_TIMEOUT_S": "abc"}, "CHAOS_RECOVERY_TIMEOUT_S='abc' is not a number"),
        ({"CHAOS_FLOOD_HOLD_S": "nan"}, "CHAOS_FLOOD_HOLD_S='nan' is not a finite number"),
        ({"CHAOS_RECOVERY_TIMEOUT_S": "-1"}, "CHAOS_RECOVERY_TIMEOUT_S='-1' is negative"),
        ({"CHAOS_FLOOD_CONNECTIONS": "0"}, "connections=0: give a whole number, 1 or more"),
        ({"CHAOS_POOL_SIZE": "1000000000"}, "pool_size=1000000000 exceeds max_pool_size=200"),
        ({"CHAOS_DIRECT_DATABASE_URL": "postgresql+asyncpg://app:pw@db.invalid/app"},
         "host 'db.invalid' cannot be resolved"),
        ({"CHAOS_DIRECT_DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/app?host=db.invalid"},
         "host 'db.invalid' cannot be resolved"),
        ({"CHAOS_DIRECT_DATABASE_URL": "host=db.invalid password=KwSecret123 dbname=app"},
         "host 'db.invalid' cannot be resolved"),
        ({"CHAOS_DATABASE_MAX_CONNECTIONS": "abc"},
         "CHAOS_DATABASE_MAX_CONNECTIONS='abc' is not a whole number"),
        ({"CHAOS_DATABASE_MAX_CONNECTIONS": "3"},
         "database_max_connections=3: give a whole number from 5 to 1000"),
        ({"CHAOS_CONNECTOR_MIN_INSTANCES": "500"},
         "connector_min_instances=500: give a whole number from 1 to 100"),
        ({"CHAOS_STOP_CONDITIONS": '{"error_rate": 5}'},
         "stop_conditions.error_rate is not a stop condition: give one of error_rate_pct,"),
        ({"CHAOS_STOP_CONDITIONS": '{"pool_pct": "high"}'},
         "stop_conditions.pool_pct: 'high' is not a number: give e.g. 90.0 (null turns it off)"),
        ({"CHAOS_STOP_CONDITIONS": "{pool_pct: 90}"},
         "stop_conditions (CHAOS_STOP_CONDITIONS) is not JSON"),
    ],
    ids=["int", "float", "nan", "negative", "zero-flood", "pool-cap", "driver-scheme",
         "host-parameter", "keyword-dsn", "capacity-type", "capacity-range", "instances-range",
         "stop-condition-name", "stop-condition-type", "stop-condition-json"],
)  # fmt: skip
def test_a_bad_setting_is_refused_before_the_steady_state(
    testbed_home: Path, tmp_path: Path, env: dict, reason: str
) -> None:
    assert reason in refused_run(testbed_home, tmp_path, **env)
    assert "KwSecret123" not in (tmp_path / "journal.json").read_text()


def test_guardrails_that_are_not_limits_are_refused(testbed_home: Path, tmp_path: Path) -> None:
    off = tmp_path / "off.json"
    off.write_text(json.dumps({"configuration": {"guardrails": "off"}}))
    assert refused_run(testbed_home, tmp_path, "--var-file", str(off)).startswith(
        "configuration guardrails: 'off' is not an object of limits"
    )
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"configuration": {"guardrails": {"max_databse_connections": 5}}}))
    assert "(did you mean max_database_connections?)" in refused_run(
        testbed_home, tmp_path, "--var-file", str(typo)
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"configuration": {"pool_size": 7', "not valid JSON (Expecting ',' delimiter"),
        ("[1, 2]", "give an object with `configuration`"),
    ],
)
def test_chaos_run_refuses_a_var_file_it_cannot_read(
    testbed_home: Path, tmp_path: Path, content: str, message: str
) -> None:
    var_file = tmp_path / "profile.json"
    var_file.write_text(content)
    result = chaos("run", "--var-file", str(var_file), SMD, home=testbed_home)
    assert result.returncode == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert message in error and str(var_file) in error
    assert not (testbed_home / "state.json").exists()


def test_a_plain_run_on_a_target_a_game_day_holds_is_refused(
    testbed_home: Path, tmp_path: Path
) -> None:
    from chaoskit.kit.lock import TargetLock

    with TargetLock(testbed_home / "embedded.lock", "game day gd-holding"):
        reason = refused_run(testbed_home, tmp_path)
    assert reason.startswith("game day gd-holding (pid ") and "is running on this target" in reason


# --- game days and their suites -------------------------------------------------------------


UNLOADABLE = pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"title": "x", "method": [', "not valid JSON (Expecting value at line 1)"),
        ("", "not valid JSON"),
        ("[]", "not an experiment: give a JSON object"),
    ],
    ids=["truncated", "empty", "array"],
)


@UNLOADABLE
@pytest.mark.parametrize("command", ["run", "validate"])
def test_chaos_run_and_validate_refuse_an_experiment_file_they_cannot_load(
    testbed_home: Path, tmp_path: Path, content: str, message: str, command: str
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(content)
    result = chaos(command, str(broken), home=testbed_home)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "ERROR" in line and f"{broken}: {message}" in line
    assert not (testbed_home / "state.json").exists()


@UNLOADABLE
def test_a_game_day_refuses_an_experiment_file_it_cannot_load(
    testbed_home: Path, tmp_path: Path, content: str, message: str
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(content)
    suite = tmp_path / "suite.toml"
    suite.write_text(f'[[experiment]]\nname = "broken"\nfile = "{broken}"\n')
    result = chaos("gameday", "run", "--suite", str(suite), "--journals",
                   str(tmp_path / "journals"), home=testbed_home)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "experiment[0].file" in lines[0] and message in lines[0]
    assert not (tmp_path / "journals").exists()


@pytest.mark.parametrize(
    ("header", "entry", "message"),
    [
        ("time_limt_min = 5", "", "gameday.time_limt_min: unknown key (did you mean time_limit"),
        ("", "expct = 'tolerated'", "experiment[0].expct: unknown key (did you mean expect?)"),
        ("", "expect = 'inconclusive'", "'inconclusive': use one of reproduced, tolerated"),
        ('profile = "corrupt.json"', "", "corrupt.json: not valid JSON"),
    ],
)  # fmt: skip
def test_a_suite_with_a_mistake_is_one_line_and_exit_2(
    testbed_home: Path, tmp_path: Path, header: str, entry: str, message: str
) -> None:
    (tmp_path / "corrupt.json").write_text("{")
    experiment = REPO / SMD
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f"[gameday]\n{header}\n[[experiment]]\nname = 'x'\nfile = '{experiment}'\n{entry}\n"
    )
    result = chaos("gameday", "run", "--suite", str(suite), home=testbed_home)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line


@pytest.mark.parametrize(
    ("cron", "message"), [("0 0 30 2 *", "never comes"), ("61 * * * *", "is not a cron")]
)
def test_a_bad_schedule_is_one_line_and_exit_2(testbed_home: Path, cron: str, message: str) -> None:
    result = chaos("gameday", "schedule", "--cron", cron, home=testbed_home)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_report_lists_a_wrong_typed_journal_and_reports_the_rest(
    testbed_home: Path, tmp_path: Path
) -> None:
    journals = tmp_path / "journals"
    journals.mkdir()
    good = {"experiment": {"title": "t"}, "status": "completed", "start": "2026-11-23T00:00:00",
            "run": [], "rollbacks": [], "startup_chaos_kit": {"verdict": "tolerated"}}  # fmt: skip
    (journals / "good.json").write_text(json.dumps(good))
    (journals / "oops.json").write_text(json.dumps({**good, "run": "oops"}))
    output = tmp_path / "report.json"
    result = chaos("gameday", "report", str(journals), "-o", str(tmp_path / "r.html"),
                   "--json", str(output), home=testbed_home)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert report["runs_read"] == 1
    reason = "malformed journal: run: input should be a valid list (it is text)"
    assert report["corrupt"] == [{"path": str(journals / "oops.json"), "reason": reason}]
    unwritable = chaos("gameday", "report", str(journals), "-o", "/proc/report.html",
                       home=testbed_home)  # fmt: skip
    assert unwritable.returncode == 2
    (line,) = unwritable.stderr.strip().splitlines()
    assert line.startswith("Error: cannot write the report to /proc/")


@pytest.mark.slow
def test_testbed_up_with_another_max_connections_says_so(testbed_home: Path) -> None:
    testbed_up()
    try:
        result = chaos("testbed", "up", "--max-connections", "50", home=testbed_home)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert "the testbed is up with max_connections=100, not 50" in line
        assert read_state()["postgres"]["max_connections"] == 100
    finally:
        testbed_down()
