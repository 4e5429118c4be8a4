"""Your own service as the system under test: the example backend of examples/ (plain
asyncio and asyncpg, text log lines, its own phase names, retries with backoff, exit 1)
through the shipped experiments, as `experiments/profiles/example-service.json` runs it;
and every way a service description or a service can go wrong, as one clear line."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.service import start_service_instance, stop_service_instance
from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.processes import pid_alive
from chaoskit.probes.service import cold_start
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.system import system_under_test
from tests.conftest import (
    REPO,
    Testbed,
    eventually,
    leftovers,
    service_configuration,
    testbed_home_for_module,
)
from tests.test_experiments import Run, assert_verdict
from tests.test_testbed import chaos

EXAMPLE = REPO / "experiments" / "profiles" / "example-service.json"
SERVICE = json.loads(EXAMPLE.read_text())["configuration"]["service"]
UNREACHABLE = "postgresql://app@127.0.0.1:9/app"  # nothing listens on port 9


def python_service(code: str, **description: Any) -> dict[str, Any]:
    """A service whose program is `code`, run by this interpreter."""
    return {"command": [sys.executable, "-c", code], **description}


# --- a description or a service that cannot be used: one clear line each ---------------------


def test_a_pattern_without_a_phase_group_is_refused_by_name() -> None:
    broken = {**SERVICE["startup_log"], "timeout": r"gave up after (?P<elapsed_s>[\d.]+)s"}
    with pytest.raises(KitError) as refused:
        system_under_test({**SERVICE, "startup_log": broken})
    assert str(refused.value) == (
        "service.startup_log.timeout: 'gave up after (?P<elapsed_s>[\\\\d.]+)s' has no named "
        "group `phase`: write (?P<phase>...) around the phase's name"
    )


def test_an_instance_that_exits_at_once_is_unobserved_with_its_last_lines() -> None:
    service = python_service(
        "print('booting'); raise SystemExit(2)", startup_log=SERVICE["startup_log"]
    )
    report = cold_start(1.0, configuration=service_configuration(UNREACHABLE, service=service))
    assert (report["ready"], report["exit_code"], report["observed"]) == (False, 2, False)
    assert report["reason"] == (
        "the instance exited with code 2 without logging a phase its startup log recognises: "
        "check service.command and service.startup_log against its last lines"
    )
    assert report["last_lines"] == ["booting"]


def test_an_instance_that_prints_nothing_recognisable_is_unobserved() -> None:
    code = "import time; print('hello from my service', flush=True); time.sleep(60)"
    service = python_service(code, startup_log=SERVICE["startup_log"])
    report = cold_start(1.0, configuration=service_configuration(UNREACHABLE, service=service))
    assert report["observed"] is False and report["exit_code"] is None
    assert report["reason"].startswith("the instance is still running without logging a phase")
    assert report["last_lines"] == ["hello from my service"]
    assert registry.running() == []  # the throwaway instance was stopped


def test_a_service_that_never_becomes_ready_says_so_with_the_none_adapter() -> None:
    service = python_service("import time; time.sleep(60)", startup_log={"format": "none"})
    report = cold_start(1.0, configuration=service_configuration(UNREACHABLE, service=service))
    assert re.fullmatch(
        r"the instance did not become ready within 1s and is still running: GET /health on "
        r"port \d+ was not answered \(ConnectError\) \(the last of \d+ checks\)",
        report["reason"],
    ), report["reason"]
    assert set(report["unreported"]) >= {"phases", "failed_phase", "phases_after_failure"}


def test_an_instance_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring SIGTERM', flush=True); time.sleep(120)"
    )
    configuration = service_configuration(UNREACHABLE, service=python_service(code))
    started = start_service_instance("stubborn", configuration=configuration)
    assert eventually(lambda: "ignoring SIGTERM" in Path(started["log"]).read_text())
    stopped = stop_service_instance("stubborn")
    assert stopped["exit_code"] == -9 and not pid_alive(started["pid"])


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            {"command": ["no-such-inventory-service"]},
            "service.command[0]: 'no-such-inventory-service' is not found",
        ),
        (
            {**SERVICE, "startup_log": {**SERVICE["startup_log"], "succeeded": "done"}},
            "service.startup_log.succeeded: 'done' has no named group `phase`",
        ),
        ({**SERVICE, "failure_exit_code": 300}, "service.failure_exit_code: 300: give 1 to 255"),
        ({**SERVICE, "cwd": "no/such/folder"}, "service.cwd: 'no/such/folder' is not a folder"),
    ],
)
def test_a_run_with_an_unusable_service_is_refused_before_anything(
    testbed_home: Path, tmp_path: Path, service: dict, message: str
) -> None:
    profile = tmp_path / "mine.json"
    profile.write_text(json.dumps({"configuration": {"service": service}}))
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--var-file",
        str(profile),
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
    )
    assert result.returncode == 1
    kit = json.loads(journal.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted" and message in kit["reason"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (testbed_home / "state.json").exists()  # the testbed was not started


def test_service_from_the_environment_must_be_json(testbed_home: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
        CHAOS_SERVICE="{command: python}",
    )
    assert result.returncode == 1
    reason = json.loads(journal.read_text())["startup_chaos_kit"]["reason"]
    assert "service (CHAOS_SERVICE) is not JSON" in reason


def test_testbed_up_with_a_profile_without_service_is_one_line(
    testbed_home: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "empty.json"
    profile.write_text(json.dumps({"configuration": {"pool_size": 3}}))
    result = chaos("testbed", "up", "--service", str(profile), home=testbed_home)
    assert result.returncode != 0
    assert "its configuration has no `service` object" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert not (testbed_home / "state.json").exists()


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            {**SERVICE, "command": ["${no_such_key}", "service.py"]},
            "service.command[0]: ${no_such_key} is not known: use a configuration key or one of ",
        ),
        (
            {"command": ["no-such-inventory-service"]},
            "service.command[0]: 'no-such-inventory-service' is not found",
        ),
        (
            {**SERVICE, "ready": {"http": "/healthz", "timeout_s": float("nan")}},
            "service.ready.timeout_s: nan: give seconds, more than 0 and at most 3600",
        ),
    ],
)
def test_testbed_up_refuses_an_unusable_service_before_postgresql_starts(
    testbed_home: Path, tmp_path: Path, service: dict, message: str
) -> None:
    profile = tmp_path / "mine.json"
    profile.write_text(json.dumps({"configuration": {"service": service}}))
    result = chaos("testbed", "up", "--service", str(profile), home=testbed_home)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not (testbed_home / "postgres").exists()  # PostgreSQL was never started


def test_a_service_that_never_answers_its_ready_path_is_named_in_the_journals_reason(
    testbed_home: Path, tmp_path: Path
) -> None:
    """The long-running instance of a service with a wrong ready path: the run is
    aborted, and its reason says which check, what it answered and for how long."""
    profile = tmp_path / "wrong-path.json"
    service = {**SERVICE, "ready": {"http": "/no-such-path", "timeout_s": 2}}
    profile.write_text(json.dumps({"configuration": {"service": service}}))
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--var-file",
        str(profile),
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
    )
    assert result.returncode == 1
    kit = json.loads(journal.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted"
    assert re.search(
        r"^the embedded testbed: the service did not start: the instance did "
        r"not become ready within 2s and is still running: GET /no-such-path on port \d+ "
        r"answered 404 \(the last of \d+ checks\); its last lines: .*step serve-http done",
        kit["reason"],
    ), kit["reason"]
    assert not (testbed_home / "state.json").exists()  # and it was taken down
    assert leftovers(testbed_home) == []


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            {
                **SERVICE,
                "startup_log": {**SERVICE["startup_log"], "succeeded": r"done (?P<step>\w+)"},
            },
            "service.startup_log.succeeded: the group `step` is not read",
        ),
        (
            {**SERVICE, "startup_log": {**SERVICE["startup_log"], "timeout": r"gave up after \d+"}},
            "service.startup_log.timeout: 'gave up after \\\\d+' has no named group `phase`",
        ),
        (
            {**SERVICE, "command": ["/no/such/program"]},
            "service.command[0]: '/no/such/program' is not found",
        ),
    ],
)
def test_chaos_validate_with_the_profile_catches_what_its_service_cannot_do(
    testbed_home: Path, tmp_path: Path, service: dict, message: str
) -> None:
    profile = tmp_path / "mine.json"
    profile.write_text(json.dumps({"configuration": {"service": service}}))
    result = chaos(
        "validate",
        "--var-file",
        str(profile),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
    )
    assert result.returncode == 2
    assert f"{profile}: {message}" in " ".join(result.stderr.split())
    good = chaos(
        "validate",
        "--var-file",
        str(EXAMPLE),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
    )
    assert good.returncode == 0, good.stderr


def test_check_service_shows_how_its_log_reads_each_line(testbed_home: Path) -> None:
    result = chaos("testbed", "check-service", str(EXAMPLE), home=testbed_home)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(
        "started" in line
        and "phase=connect-database" in line
        and "step connect-database started" in line
        for line in lines
    )
    assert any("succeeded" in line and "phase=serve-http elapsed_s=" in line for line in lines)
    assert "Ready after" in result.stdout
    assert "failure_at: no `timestamp` group" in result.stdout
    assert not (testbed_home / "state.json").exists()  # the testbed it brought up is down
    assert leftovers(testbed_home) == []


def test_check_service_of_a_service_that_never_becomes_ready_exits_1_and_says_why(
    testbed_home: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "wrong-path.json"
    service = {**SERVICE, "ready": {"http": "/no-such-path", "timeout_s": 2}}
    profile.write_text(json.dumps({"configuration": {"service": service}}))
    result = chaos("testbed", "check-service", str(profile), home=testbed_home)
    assert result.returncode == 1
    assert re.search(r"Not ready: .*GET /no-such-path on port \d+ answered 404", result.stdout)
    assert leftovers(testbed_home) == []


# --- the example service through the shipped experiments (slow) -------------------------------


@pytest.fixture(scope="module")
def example_testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    """`chaos testbed up --service experiments/profiles/example-service.json`, kept up."""
    home = kit_dirs("example-service") / ".testbed"
    result = chaos("testbed", "up", "--service", str(EXAMPLE), home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    with testbed_home_for_module(home):
        state = testbed_up(configuration={"service": SERVICE})  # up: the same one is accepted
        assert state["service"]["system"] == SERVICE
        yield Testbed(home, state)
        testbed_down()


def run_example(
    testbed: Testbed, name: str, tmp_path: Path, *var_files: Path, **settings: object
) -> Run:
    journal = tmp_path / f"{name}-{len(list(tmp_path.glob('*.json')))}.json"
    env = {f"CHAOS_{key.upper()}": str(value) for key, value in settings.items()}
    layers = [a for path in (EXAMPLE, *var_files) for a in ("--var-file", str(path))]
    result = chaos(
        "run",
        *layers,
        "--journal-path",
        str(journal),
        f"experiments/{name}.json",
        home=testbed.home,
        timeout_s=300,
        **env,
    )
    outcome = Run(result.returncode, json.loads(journal.read_text()))
    assert outcome.journal["steady_states"]["before"]["steady_state_met"] is True, result.stdout
    assert outcome.kit["recovery"]["recovered"] is True
    return outcome


def connect_database_gave_up(outcome: Run) -> dict[str, Any]:
    startup = outcome.output("observe-fresh-instance-startup")
    assert startup["exit_code"] == 1 and startup["startup_failed"] is True
    statuses = [(p["name"], p["status"]) for p in startup["phases"]]
    assert statuses == [
        ("read-settings", "succeeded"),
        ("connect-database", "timeout"),
        ("load-catalogue", "blocked"),
        ("serve-http", "blocked"),
    ]
    return startup["failed_phase"]


@pytest.mark.slow
def test_a_run_without_the_profile_of_the_testbeds_service_says_which_and_how(
    example_testbed: Testbed, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=example_testbed.home,
    )
    assert result.returncode == 1
    assert json.loads(journal.read_text())["startup_chaos_kit"]["reason"] == (
        "the embedded testbed: it is up with another service (${python} "
        "${examples}/inventory-service/service.py) than this run's (the reference service): give "
        "the run the profile the testbed was brought up with (--var-file), or take the testbed "
        "down first (chaos testbed down)"
    )


@pytest.mark.slow
def test_a_game_day_with_the_profile_runs_the_users_service(
    example_testbed: Testbed, tmp_path: Path
) -> None:
    result = chaos(
        "gameday",
        "run",
        "--profile",
        str(EXAMPLE),
        "--only",
        "smd-phase3-timeout",
        "--journals",
        str(tmp_path),
        home=example_testbed.home,
        timeout_s=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (summary_path,) = tmp_path.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["preflight"]["healthy"] is True
    (run,) = summary["experiments"]
    assert (run["verdict"], run["as_expected"]) == ("reproduced", True)
    journal = json.loads(Path(run["journal"]).read_text())
    startup = next(
        r["output"]
        for r in journal["run"]
        if r["activity"]["name"] == "observe-fresh-instance-startup"
    )
    assert (startup["failed_phase"]["name"], startup["exit_code"]) == ("connect-database", 1)


@pytest.mark.slow
def test_the_example_follows_the_database_room(example_testbed: Testbed, tmp_path: Path) -> None:
    """Its connect-database step needs its whole pool at once, as the reference service's
    Phase 3 does: the boundary is the same arithmetic, computed from the live testbed."""
    pool = 4
    inside = example_testbed.database_room() - pool
    tolerated = run_example(
        example_testbed, "smd-phase3-timeout", tmp_path, flood_connections=inside, pool_size=pool
    )
    assert_verdict(tolerated, "tolerated")
    past = run_example(
        example_testbed,
        "smd-phase3-timeout",
        tmp_path,
        flood_connections=inside + 1,
        pool_size=pool,
    )
    assert_verdict(past, "reproduced")
    assert connect_database_gave_up(past)["cause"] == "too_many_connections"
    assert past.expectation("failure_exit_code")["expected"] == "== 1"


@pytest.mark.slow
def test_the_example_through_the_connector_and_its_pool(
    example_testbed: Testbed, tmp_path: Path
) -> None:
    connector = run_example(example_testbed, "vpc-connector-concurrent-connections", tmp_path)
    assert_verdict(connector, "reproduced")
    assert connect_database_gave_up(connector)["cause"] == "connect_timeout"
    storm = run_example(example_testbed, "cloudsql-pool-exhaustion", tmp_path)
    assert_verdict(storm, "reproduced")


@pytest.mark.slow
def test_a_service_exiting_1_deviates_from_a_chain_that_expects_3(
    example_testbed: Testbed, tmp_path: Path
) -> None:
    undeclared = tmp_path / "undeclared-exit-code.json"
    service = {k: v for k, v in SERVICE.items() if k != "failure_exit_code"}
    undeclared.write_text(json.dumps({"configuration": {"service": service}}))
    outcome = run_example(example_testbed, "smd-phase3-timeout", tmp_path, undeclared)
    assert_verdict(outcome, "deviated")
    assert outcome.kit["reason"] == (
        "the startup failed, but not as declared: failure_exit_code expected == 3, observed 1"
    )


@pytest.mark.slow
def test_the_none_adapter_still_judges_readiness_and_exit_code(
    example_testbed: Testbed, tmp_path: Path
) -> None:
    silent = tmp_path / "silent.json"
    silent.write_text(
        json.dumps({"configuration": {"service": {**SERVICE, "startup_log": {"format": "none"}}}})
    )
    outcome = run_example(example_testbed, "smd-phase3-timeout", tmp_path, silent)
    startup = outcome.output("observe-fresh-instance-startup")
    assert (startup["ready"], startup["exit_code"]) == (False, 1)
    # what its log does not say is neither met nor unmet; the rest decides
    inconclusive = {e["name"] for e in outcome.kit["expectations"] if e.get("inconclusive")}
    assert inconclusive == {
        "phase3_timeout",
        "phase3_is_database",
        "phase3_cause",
        "lifespan_startup_failed",
        "later_phases_blocked",
    }
    assert_verdict(outcome, "reproduced")
    assert outcome.kit["reason"] == "pressure applied and all 2 outcome expectations met"


def test_the_example_profile_runs_only_what_the_kit_installs() -> None:
    assert SERVICE["command"][1] == "${examples}/inventory-service/service.py"
    source = (REPO / "examples" / "inventory-service" / "service.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "asyncio", "logging", "os", "sys", "time", "asyncpg"}


def test_cold_start_of_a_missing_program_is_one_line() -> None:
    configuration = service_configuration(UNREACHABLE, service={"command": ["/no/such/app"]})
    with pytest.raises(ActivityFailed) as failure:
        cold_start(1.0, configuration=configuration)
    assert str(failure.value).startswith("service.command: '/no/such/app' cannot be started")
