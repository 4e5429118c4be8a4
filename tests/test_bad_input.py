"""A user's mistake is one clear line naming the field and the fix, a non-zero exit, and
nothing started or changed: no testbed, no journal of a run that went on with defaults,
no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chaoskit.testbed.connector.launch import RunningConnector
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.postgres import PostgresEndpoint
from chaoskit.testbed.state import read_state
from tests.conftest import REPO
from tests.test_testbed import chaos

SMD = "experiments/smd-phase3-timeout.json"
# a team's own stop condition's probe: their checkout's status
PROBE = {
    "type": "probe",
    "name": "checkout-status",
    "tolerance": 200,
    "provider": {"type": "http", "url": "http://127.0.0.1:9/checkout"},
}
SLO = "projects/netra-staging/services/backend/serviceLevelObjectives/availability"


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
        (
            {"CHAOS_DIRECT_DATABASE_URL": "postgresql+asyncpg://app:pw@db.invalid/app"},
            "host 'db.invalid' cannot be resolved",
        ),
        (
            {"CHAOS_DIRECT_DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/app?host=db.invalid"},
            "host 'db.invalid' cannot be resolved",
        ),
        (
            {"CHAOS_DIRECT_DATABASE_URL": "host=db.invalid password=KwSecret123 dbname=app"},
            "host 'db.invalid' cannot be resolved",
        ),
        (
            {"CHAOS_DATABASE_MAX_CONNECTIONS": "abc"},
            "CHAOS_DATABASE_MAX_CONNECTIONS='abc' is not a whole number",
        ),
        (
            {"CHAOS_DATABASE_MAX_CONNECTIONS": "3"},
            "database_max_connections=3: give a whole number from 5 to 1000",
        ),
        (
            {"CHAOS_CONNECTOR_MIN_INSTANCES": "500"},
            "connector_min_instances=500: give a whole number from 1 to 100",
        ),
        (
            {"CHAOS_STOP_CONDITIONS": '{"error_rate": 5}'},
            "stop_conditions.error_rate is not a stop condition: give one of error_rate_pct,",
        ),
        (
            {"CHAOS_STOP_CONDITIONS": '{"pool_pct": "high"}'},
            "stop_conditions.pool_pct: 'high' is not a number: give e.g. 90.0 (null turns it off)",
        ),
        (
            {"CHAOS_STOP_CONDITIONS": "{pool_pct: 90}"},
            "stop_conditions (CHAOS_STOP_CONDITIONS) is not JSON",
        ),
        (
            {"CHAOS_STOP_CONDITIONS": '{"every_s": 1e10}'},
            "stop_conditions.every_s: 10000000000.0 is out of range: give seconds from 0.1 to 3600",
        ),
        (
            {"CHAOS_RECOVERY_TIMEOUT_S": "1e300"},
            "CHAOS_RECOVERY_TIMEOUT_S='1e300' is longer than a day: give seconds, at most 86400",
        ),
        ({"CHAOS_FLOOD_HOLD_S": "inf"}, "CHAOS_FLOOD_HOLD_S='inf' is not a finite number"),
        (
            {
                "CHAOS_STOP_CONDITIONS": json.dumps(
                    {
                        "probes": [
                            {
                                "name": "checkout",
                                "probe": {k: v for k, v in PROBE.items() if k != "tolerance"},
                            }
                        ]
                    }
                )
            },
            "stop_conditions.probes[0].probe.tolerance is missing: say what is within",
        ),
    ],
    ids=[
        "int",
        "float",
        "nan",
        "negative",
        "zero-flood",
        "pool-cap",
        "driver-scheme",
        "host-parameter",
        "keyword-dsn",
        "capacity-type",
        "capacity-range",
        "instances-range",
        "stop-condition-name",
        "stop-condition-type",
        "stop-condition-json",
        "stop-condition-range",
        "duration-1e300",
        "duration-inf",
        "own-probe-tolerance",
    ],
)
def test_a_bad_setting_is_refused_before_the_steady_state(
    testbed_home: Path, tmp_path: Path, env: dict, reason: str
) -> None:
    assert reason in refused_run(testbed_home, tmp_path, **env)
    assert "KwSecret123" not in (tmp_path / "journal.json").read_text()


@pytest.mark.parametrize(
    ("guardrails", "message"),
    [
        ("off", "configuration guardrails: 'off' is not an object of limits"),
        (
            {"max_databse_connections": 5},
            "configuration guardrails.max_databse_connections: "
            "unknown limit (did you mean max_database_connections?)",
        ),
        (
            {"max_database_connections": 5, "allowed_targets": [["x"]]},
            "configuration guardrails.allowed_targets[0]: ['x'] is not a host name: give text",
        ),
        (
            {"max_run_duration_s": 1e300},
            "configuration guardrails.max_run_duration_s: 1e+300: give seconds from 1 to 86400",
        ),
        (
            {"max_database_connections": 5.5},
            "configuration guardrails.max_database_connections: 5.5: give a whole number",
        ),
    ],
    ids=["text", "unknown-limit", "target-not-text", "duration-1e300", "fraction"],
)
def test_guardrails_that_are_not_limits_are_refused(
    testbed_home: Path, tmp_path: Path, guardrails: object, message: str
) -> None:
    var_file = tmp_path / "guardrails.json"
    var_file.write_text(json.dumps({"configuration": {"guardrails": guardrails}}))
    assert refused_run(testbed_home, tmp_path, "--var-file", str(var_file)).startswith(message)


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
        ("method: [", "not valid JSON"),
        ("[]", "not an experiment: give a JSON object"),
    ],
    ids=["truncated", "empty", "yaml-in-json", "array"],
)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.yaml", "", "not an experiment: give a JSON object"),
        (
            "broken.json",
            (REPO / SMD).read_text().replace("verification.control", "verificaton.control"),
            "controls[0]: module 'chaoskit.verificaton.control' is not installed (did you mean "
            "chaoskit.verification.control?)",
        ),
    ],
    ids=["empty-yaml", "mistyped-control"],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_chaos_run_and_validate_refuse_an_experiment_they_cannot_load_or_run(
    testbed_home: Path, tmp_path: Path, name: str, content: str, message: str, command: str
) -> None:
    broken = tmp_path / name
    broken.write_text(content)
    result = chaos(command, str(broken), home=testbed_home)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "ERROR" in line and f"{broken}: {message}" in line
    assert not testbed_home.exists()  # nothing started


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
    result = chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--journals",
        str(tmp_path / "journals"),
        home=testbed_home,
    )
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
        (
            "",
            "[experiment.vars]\nflood_conections = 150",
            "experiment[0].vars.flood_conections: "
            "not a configuration key of its experiment (did you mean flood_connections?)",
        ),
        (
            "",
            "[experiment.vars]\nflood_connections = inf",
            "experiment[0] (its profiles and "
            "vars): flood_connections: inf is not a whole number: give e.g. 120",
        ),
        (
            "",
            "[experiment.vars]\nflood_connections = 'many'",
            "flood_connections: 'many' is not a whole number",
        ),
        (
            "",
            "[experiment.vars]\nrecovery_timeout_s = 1e300",
            "recovery_timeout_s=1e+300 is longer than a day: give seconds, at most 86400",
        ),
        ("", "[experiment.vars]\nguardrails = 'off'", "guardrails: 'off' is not an object"),
        (
            'profile = "target.json"',
            "",
            "profile: configuration target='../../../x' is unknown: use one of embedded, staging",
        ),
        (
            'profile = "guardrails.json"',
            "",
            "profile: guardrails.allowed_targets[0]: ['x'] is not a host name",
        ),
    ],
    ids=[
        "unknown-header-key",
        "unknown-entry-key",
        "unknown-verdict",
        "corrupt-profile",
        "misspelt-var",
        "infinite-var",
        "wrong-type-var",
        "1e300-duration",
        "guardrails-text",
        "target-path",
        "guardrail-target-not-text",
    ],
)
def test_a_suite_with_a_mistake_is_one_line_and_exit_2(
    testbed_home: Path, tmp_path: Path, header: str, entry: str, message: str
) -> None:
    (tmp_path / "corrupt.json").write_text("{")
    (tmp_path / "target.json").write_text('{"configuration": {"target": "../../../x"}}')
    (tmp_path / "guardrails.json").write_text(
        json.dumps({"configuration": {"guardrails": {"allowed_targets": [["x"]]}}})
    )
    experiment = REPO / SMD
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f"[gameday]\n{header}\n[[experiment]]\nname = 'x'\nfile = '{experiment}'\n{entry}\n"
    )
    result = chaos("gameday", "run", "--suite", str(suite), home=testbed_home)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert not testbed_home.exists()  # nothing started, no lock file anywhere
    assert not (testbed_home / "../../../x.lock").resolve().exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../../escape", "experiment[0].name: '../../../escape': give a plain name"),
        ("summary", "experiment[0].name: 'summary': give a plain name"),
        ("a" * 100_000, "experiment[0].name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaa"),
    ],
    ids=["path", "the-summary's", "100000-characters"],
)
def test_an_experiment_name_becomes_a_file_name_only_when_plain(
    testbed_home: Path, tmp_path: Path, name: str, message: str
) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(f"[[experiment]]\nname = '{name}'\nfile = '{REPO / SMD}'\n")
    result = chaos(
        "gameday",
        "run",
        "--suite",
        str(suite),
        "--journals",
        str(tmp_path / "journals"),
        home=testbed_home,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line and len(line) < 400  # a long value is cut in its line
    assert not (tmp_path / "journals").exists() and not testbed_home.exists()
    assert not (tmp_path.parent.parent / "escape.json").exists()


@pytest.mark.parametrize(
    "command", [("gameday", "run"), ("gameday", "limit", SMD)], ids=["run", "limit"]
)
def test_journals_that_are_a_file_are_refused_before_the_game_day(
    testbed_home: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    journals = tmp_path / "journals"
    journals.write_text("not a folder")
    result = chaos(*command, "--journals", str(journals), home=testbed_home)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"Error: --journals {journals}: it is a file, not a folder: give a folder you may write to"
    )
    assert journals.read_text() == "not a folder" and not testbed_home.exists()


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
    good = {
        "experiment": {"title": "t"},
        "status": "completed",
        "start": "2026-11-23T00:00:00",
        "run": [],
        "rollbacks": [],
        "startup_chaos_kit": {"verdict": "tolerated"},
    }
    (journals / "good.json").write_text(json.dumps(good))
    (journals / "oops.json").write_text(json.dumps({**good, "run": "oops"}))
    output = tmp_path / "report.json"
    result = chaos(
        "gameday",
        "report",
        str(journals),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(output),
        home=testbed_home,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert report["runs_read"] == 1
    reason = "malformed journal: run: input should be a valid list (it is text)"
    assert report["corrupt"] == [{"path": str(journals / "oops.json"), "reason": reason}]
    unwritable = chaos(
        "gameday", "report", str(journals), "-o", "/proc/report.html", home=testbed_home
    )
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


# --- chaos validate and chaos run: one check for the extension, guardrails, stop conditions


def _smd_with(
    tmp_path: Path,
    extension: dict | None = None,
    configuration: dict | None = None,
    name: str = "experiment.json",
) -> Path:
    """The Phase 3 experiment with its extension's and configuration's keys replaced."""
    experiment = json.loads((REPO / SMD).read_text())
    experiment["extensions"][0].update(extension or {})
    experiment["configuration"].update(configuration or {})
    path = tmp_path / name
    path.write_text(json.dumps(experiment))
    return path


@pytest.mark.parametrize(
    ("extension", "configuration", "message"),
    [
        (
            {"guardrails": {"max_db_connections": 5}},
            {},
            "guardrails.max_db_connections: unknown limit (did you mean max_database_connections?)",
        ),
        (
            {"guardrails": {"max_database_connections": 5, "allowed_targets": [["x"]]}},
            {},
            "guardrails.allowed_targets[0]: ['x'] is not a host name: give text",
        ),
        (
            {"guardrails": {"allowed_targets": "db.internal"}},
            {},
            "guardrails.allowed_targets: 'db.internal': give a list of host names",
        ),
        (
            {"guardrails": {"max_run_duration_s": 1e300}},
            {},
            "guardrails.max_run_duration_s: 1e+300: give seconds from 1 to 86400",
        ),
        (
            {"guardrails": {"max_database_connections": -5}},
            {},
            "guardrails.max_database_connections: -5: give a whole number from 0 to 100000",
        ),
        ({"guardrails": "off"}, {}, "guardrails: 'off' is not an object of limits"),
        (
            {"stop_conditions": {"every_s": 1e10}},
            {},
            "stop_conditions.every_s: 10000000000.0 is out of range: give seconds from 0.1 to 3600",
        ),
        (
            {"stop_conditions": {"pool_pct": 150}},
            {},
            "stop_conditions.pool_pct: 150 is out of range: give a percentage from 0 to 100",
        ),
        (
            {},
            {"guardrails": {"max_db_connections": 5}},
            (
                "configuration guardrails.max_db_connections: unknown limit "
                "(did you mean max_database_"
            ),
        ),
        (
            {},
            {"recovery_timeout_s": 1e300},
            "recovery_timeout_s=1e+300 is longer than a day: give seconds, at most 86400",
        ),
        (
            {"stop_conditions": {"probes": [{"probe": PROBE}]}},
            {},
            'stop_conditions.probes[0].name is missing: give e.g. {"name": "checkout-errors"',
        ),
        (
            {
                "stop_conditions": {
                    "slo_burn_rates": [
                        {"name": "checkout-slo", "slo": SLO, "threshold": 10, "lookback": "300s"}
                    ]
                }
            },
            {},
            "stop_conditions.slo_burn_rates[0].lookback is not a field of slo_burn_rates: give "
            "name, slo, threshold, lookback_s, every_s",
        ),
        (
            {
                "stop_conditions": {
                    "slo_burn_rates": [
                        {"name": "checkout-slo", "slo": SLO, "threshold": float("inf")}
                    ]
                }
            },
            {},
            "stop_conditions.slo_burn_rates[0].threshold: inf is not a finite number: give a "
            "burn rate from 0 to 100000",
        ),
        (
            {
                "stop_conditions": {
                    "alert_policies": [
                        {"name": "checkout", "policy": "projects/netra-staging/alertPolicies/7001"}
                    ]
                }
            },
            {"stop_conditions": {"probes": [{"name": "checkout", "probe": PROBE}]}},
            "stop_conditions with extensions.startup-chaos-kit.stop_conditions: 'checkout' names "
            "a condition in probes and one in alert_policies: give each condition its own name",
        ),
    ],
    ids=[
        "unknown-limit",
        "target-not-text",
        "targets-not-a-list",
        "duration-1e300",
        "negative-limit",
        "guardrails-text",
        "every-1e10",
        "percent-150",
        "configuration-unknown-limit",
        "configuration-duration",
        "own-probe-no-name",
        "slo-unknown-field",
        "slo-infinite-threshold",
        "name-twice-across-layers",
    ],
)
def test_chaos_validate_refuses_what_chaos_run_refuses(
    testbed_home: Path, tmp_path: Path, extension: dict, configuration: dict, message: str
) -> None:
    experiment = _smd_with(tmp_path, extension, configuration)
    validated = chaos("validate", str(experiment), home=testbed_home)
    assert validated.returncode == 1
    (error,) = [line for line in validated.stderr.splitlines() if "ERROR" in line]
    assert message in error, validated.stderr
    ran = chaos(
        "run", "--journal-path", str(tmp_path / "j.json"), str(experiment), home=testbed_home
    )
    assert ran.returncode == 1 and message in ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert not (tmp_path / "j.json").exists() and not testbed_home.exists()  # nothing ran


# --- chaos run and chaos validate: the files they read ------------------------------------

BOMB = "configuration:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)


def _refused_in_one_line(home: Path, *arguments: str) -> str:
    """`chaos ARGUMENTS` refused before anything started: its one error line."""
    result = chaos(*arguments, home=home)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert not home.exists()  # nothing started
    return error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1]", "give a YAML mapping"),
        ("a: [", "not valid YAML (while parsing a flow node)"),
        (
            "controls: {c: {provider: {type: python, module: chaosaddons.controls.safegard}}}",
            "control 'c': module 'chaosaddons.controls.safegard' is not installed",
        ),
    ],
    ids=["a-list", "not-yaml", "mistyped-control"],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_settings_file_the_toolkit_cannot_read_is_one_line(
    testbed_home: Path, tmp_path: Path, command: str, content: str, message: str
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(content)
    error = _refused_in_one_line(testbed_home, "--settings", str(settings), command, SMD)
    assert error.startswith(f"Error: --settings {settings}") and message in error


@pytest.mark.parametrize(
    ("option", "name", "content", "message"),
    [
        ("--control-file", "controls.json", "[1]", "give controls as an object of name to"),
        ("--control-file", "controls.json", "", "controls.json: not valid JSON"),
        ("--control-file", "controls.yaml", "", "controls.yaml: it is empty"),
        (
            "--control-file",
            "controls.yaml",
            "c: {provider: {type: python, module: chaoskit.testbed.controls}}",
            "module 'chaoskit.testbed.controls' is not installed (did you "
            "mean chaoskit.testbed.control?)",
        ),
        (
            "--var-file",
            "profile",
            '{"configuration": {"pool_size": 5}}',
            "profile: line 1 is not NAME=value: a var-file is JSON or YAML when its name ends in",
        ),
        (
            "--var-file",
            "bomb.yaml",
            BOMB,
            "bomb.yaml: more than 100,000 values once its YAML aliases (&, *) are expanded",
        ),
    ],
    ids=[
        "controls-list",
        "controls-empty-json",
        "controls-empty-yaml",
        "mistyped-global-control",
        "var-file-no-suffix",
        "yaml-alias-bomb",
    ],
)
def test_a_control_or_var_file_chaos_run_cannot_read_is_one_line(
    testbed_home: Path, tmp_path: Path, option: str, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert message in _refused_in_one_line(testbed_home, "run", option, str(path), SMD)


# --- numbers and sizes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"instances": NaN}', "instances: must be a whole number, not nan"),
        (
            '{"connections_per_instance": Infinity}',
            "connections_per_instance: must be a whole number, not inf",
        ),
        ('{"max_instances": -Infinity}', "max_instances: must be a whole number, not -inf"),
    ],
)
def test_a_non_finite_whole_number_to_the_connector_is_a_400_naming_it(
    connector: RunningConnector, body: str, message: str
) -> None:
    before = httpx.get(f"{connector.api_url}/state").json()["config"]
    response = httpx.put(
        f"{connector.api_url}/config", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": message, "field": message.split(":")[0]}
    assert httpx.get(f"{connector.api_url}/state").json()["config"] == before


@pytest.mark.parametrize("since", ["nan", "inf", "-inf"])
def test_events_since_a_non_finite_time_is_a_400(connector: RunningConnector, since: str) -> None:
    response = httpx.get(f"{connector.api_url}/events", params={"since": since})
    assert response.status_code == 400 and response.json()["field"] == "since"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen-port", "99999"], "argument --listen-port: '99999' is not a port: give 1 to"),
        (["--api-port", "0"], "argument --api-port: '0' is not a port: give 1 to 65535"),
        (["--upstream", "nohost"], "argument --upstream: 'nohost': give host:port, e.g. 127.0"),
        (["--upstream", "db:port"], "argument --upstream: 'port' is not a port"),
        (["--config", "[1]"], "argument --config: [1]: give a JSON object of settings"),
        (["--config", "NaN"], "argument --config: nan: give a JSON object of settings"),
        (["--config", "{nope"], "argument --config: not JSON (Expecting property name"),
        (["--config", '{"instances": 1e999}'], "instances: must be a whole number, not inf"),
    ],
    ids=[
        "port-99999",
        "port-0",
        "upstream-no-port",
        "upstream-port-text",
        "config-list",
        "config-nan",
        "config-not-json",
        "config-infinite",
    ],
)
def test_the_connectors_own_command_line_is_one_line(arguments: list[str], message: str) -> None:
    defaults = {"--upstream": "127.0.0.1:5432", "--listen-port": "7001", "--api-port": "7002"}
    given = dict(zip(arguments[::2], arguments[1::2], strict=True))
    command = [a for k, v in {**defaults, **given}.items() for a in (k, v)]
    result = subprocess.run(
        [sys.executable, "-m", "chaoskit.testbed.connector", *command],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1], result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SERVICE_PORT", "99999", "SERVICE_PORT='99999' must be <= 65535"),
        (
            "SERVICE_INITIALIZATION_TIMEOUT_S",
            "1e300",
            "SERVICE_INITIALIZATION_TIMEOUT_S='1e300' must be <= 86400",
        ),
        ("SERVICE_POOL_SIZE", "x" * 100_000, "SERVICE_POOL_SIZE='xxxxxxxxxxxxxxxxxxxxxxxxxxx..."),
    ],
    ids=["port-99999", "duration-1e300", "100000-characters"],
)
def test_the_reference_services_settings_are_bounded(
    postgres: PostgresEndpoint, variable: str, value: str, message: str
) -> None:
    env = {**os.environ, "SERVICE_DATABASE_URL": postgres.app_dsn, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "chaoskit.testbed.service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}") and len(line) < 300


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--to", "inf"],
            "--to inf: give a number of at least 1 connections (flood_connections's lowest)",
        ),
        (
            ["--from", "-5"],
            "--from -5: give a number of at least 1 connections (flood_connections's lowest)",
        ),
        (
            ["--from", "nan"],
            "--from nan: give a number of at least 1 connections (flood_connections's lowest)",
        ),
        (["--repeat", "1000"], "--repeat 1000: give 1 to 20"),
    ],
    ids=["to-inf", "from-negative", "from-nan", "repeat-1000"],
)
def test_a_sweep_outside_its_knobs_range_is_refused_before_taking_the_target(
    testbed_home: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = chaos(
        "gameday", "limit", SMD, *arguments, "--journals", str(tmp_path / "j"), home=testbed_home
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]
    assert not testbed_home.exists() and not (tmp_path / "j").exists()  # no lock, no probe


def test_a_long_value_is_cut_in_its_error_line(testbed_home: Path, tmp_path: Path) -> None:
    reason = refused_run(testbed_home, tmp_path, CHAOS_POOL_SIZE="7" * 100_000 + "x")
    assert reason.startswith("CHAOS_POOL_SIZE='7777777") and "..." in reason
    assert len(reason) < 200


# --- the testbed's own files ---------------------------------------------------------------

_NOT_A_STATE = "state.json is not a testbed's state ("


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ('{"postgres": {"pid": 1', _NOT_A_STATE + "JSONDecodeError: corrupt or cut short)"),
        ("[1, 2]", _NOT_A_STATE + "not the object the kit writes)"),
        ('{"postgres": [], "connector": {}}', _NOT_A_STATE + "not the object the kit writes)"),
        ("\udcff", _NOT_A_STATE),
    ],
    ids=["partial", "a-list", "wrong-part", "not-text"],
)
@pytest.mark.parametrize(
    "command",
    [("testbed", "status"), ("testbed", "down"), ("testbed", "up"), ("gameday", "run")],
    ids=["status", "down", "up", "gameday"],
)
def test_a_state_file_the_kit_did_not_write_is_one_line(
    testbed_home: Path, command: tuple[str, ...], state: str, message: str
) -> None:
    testbed_home.mkdir(parents=True)
    (testbed_home / "state.json").write_bytes(state.encode(errors="surrogateescape"))
    result = chaos(*command, home=testbed_home)
    assert result.returncode in (1, 2) and "Traceback" not in result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "remove it" in line
    assert sorted(p.name for p in testbed_home.iterdir()) == ["state.json"]  # nothing started


def test_a_state_file_the_kit_did_not_write_aborts_a_run(
    testbed_home: Path, tmp_path: Path
) -> None:
    testbed_home.mkdir(parents=True)
    (testbed_home / "state.json").write_text('{"postgres": ')
    journal = tmp_path / "journal.json"
    result = chaos("run", "--journal-path", str(journal), SMD, home=testbed_home)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    kit = json.loads(journal.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted" and _NOT_A_STATE in kit["reason"]


@pytest.mark.parametrize(
    "command",
    [("testbed", "status"), ("testbed", "up"), ("gameday", "run"), ("run", SMD)],
    ids=["status", "up", "gameday", "run"],
)
def test_a_testbed_home_that_is_a_file_is_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home = tmp_path / "home"
    home.write_text("a file")
    if command[0] == "run":
        command = ("run", "--journal-path", str(tmp_path / "j.json"), *command[1:])
    result = chaos(*command, home=home)
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2) and "Traceback" not in output
    message = f"TESTBED_HOME={home} is not a folder: point it at a folder"
    if command[0] == "run":  # refused before anything ran, and the journal says why
        kit = json.loads((tmp_path / "j.json").read_text())["startup_chaos_kit"]
        assert kit["verdict"] == "aborted" and kit["reason"].startswith(message)
    else:
        (line,) = result.stderr.strip().splitlines()
        assert message in line
    assert home.read_text() == "a file"


@pytest.mark.parametrize(
    ("name", "profile", "message"),
    [
        ("service.json", '{"configuration": [1]}', "give an object with `configuration`"),
        (
            "service.json",
            '{"configuration": {"service": [1]}}',
            "its configuration has no `service` object",
        ),
        ("service.json", "[1]", "give an object with `configuration`"),
        ("service.yaml", "service: [", "not valid YAML"),
    ],
    ids=["configuration-list", "service-list", "a-list", "not-yaml"],
)
def test_testbed_up_with_a_service_it_cannot_read_is_one_line(
    testbed_home: Path, tmp_path: Path, name: str, profile: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(profile)
    result = chaos("testbed", "up", "--service", str(path), home=testbed_home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: --service {path}") and message in line
    assert not testbed_home.exists()


def test_recommend_verify_with_a_profile_it_cannot_read_is_one_line(
    testbed_home: Path, tmp_path: Path
) -> None:
    result = chaos(
        "gameday",
        "recommend",
        str(tmp_path),
        "--verify",
        "--profile",
        str(tmp_path / "staging.json"),
        home=testbed_home,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert (
        line == f"Error: --profile {tmp_path / 'staging.json'}: cannot be read (No such file "
        "or directory)"
    )
    assert not testbed_home.exists()
