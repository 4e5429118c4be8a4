"""Backends the kit was not written around, through the README's "Test your own service"
path alone: `chaos testbed up --service PROFILE`, `chaos run --var-file PROFILE`, `chaos
gameday limit --profile PROFILE`.

- ledger-service (tests/strangers/): synchronous, `http.server` and psycopg 3, logfmt
  lines on stderr, durations in milliseconds, exit code 1, its own step names;
- smd-service (examples/): the incident's own log lines (CYCLE / PASS / FAIL), uvicorn's
  "Application startup failed" on stderr, exit code 3, no cause in its log;
- tally (tests/strangers/tally/, written by a newcomer from the README alone): threads
  and pg8000, epoch milliseconds and microsecond durations, exit code 75.

Each reproduces with the default flood, and its boundary is found where the live
testbed's arithmetic puts it: the room PostgreSQL leaves an application, less the pool
the service holds (read from the long-running instance of the same service).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.kit.settings import embedded_profile
from chaoskit.targets.database import database_sessions
from chaoskit.testbed.lifecycle import testbed_down
from chaoskit.testbed.state import read_state
from tests.conftest import REPO, Testbed, leftovers, testbed_home_for_module
from tests.test_experiments import Run, assert_verdict
from tests.test_testbed import chaos

LEDGER = REPO / "tests" / "strangers" / "ledger-service.json"
SMD = REPO / "experiments" / "profiles" / "smd-service.json"
TALLY = REPO / "tests" / "strangers" / "tally" / "profile.json"


def profile_with(tmp: Path, base: Path, **configuration: Any) -> Path:
    """`base` with `configuration` over its own."""
    content = json.loads(base.read_text())
    content["configuration"].update(configuration)
    path = tmp / f"{base.stem}-{'-'.join(f'{k}{v}' for k, v in configuration.items())}.json"
    path.write_text(json.dumps(content))
    return path


@pytest.fixture(scope="module", params=["ledger", "smd", "tally"])
def stranger(request: pytest.FixtureRequest, kit_dirs: Callable[[str], Path]) -> Iterator[Any]:
    """The stranger's testbed, up with its own service, as the README says: the ledger
    with a pool of 4 (not the embedded profile's 5), the others as their profiles say."""
    folder = kit_dirs(f"stranger-{request.param}")
    profile = {"ledger": profile_with(folder, LEDGER, pool_size=4), "smd": SMD, "tally": TALLY}[
        request.param
    ]
    home = folder / ".testbed"
    up = chaos("testbed", "up", "--service", str(profile), home=home)
    assert up.returncode == 0, up.stdout + up.stderr
    with testbed_home_for_module(home):
        yield request.param, profile, Testbed(home, read_state())
        testbed_down()
    assert leftovers(home) == []


def held_pool(testbed: Testbed) -> int:
    """The connections the long-running instance holds: the pool one instance of this
    service, configured as the profile says, opens."""
    return database_sessions(testbed.admin_dsn)["by_application"]["service-testbed"]


def run(testbed: Testbed, profile: Path, tmp_path: Path, **settings: object) -> Run:
    journal = tmp_path / f"run-{len(list(tmp_path.glob('*.json')))}.json"
    env = {f"CHAOS_{key.upper()}": str(value) for key, value in settings.items()}
    result = chaos(
        "run",
        "--var-file",
        str(profile),
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed.home,
        timeout_s=300,
        **env,
    )
    outcome = Run(result.returncode, json.loads(journal.read_text()))
    assert outcome.kit["recovery"]["recovered"] is True, outcome.kit["reason"]
    return outcome


@pytest.mark.slow
def test_the_long_running_instance_runs_with_the_profiles_configuration(stranger: Any) -> None:
    _, profile, testbed = stranger
    configured = json.loads(profile.read_text())["configuration"]
    assert held_pool(testbed) == configured.get("pool_size", embedded_profile()["pool_size"])


@pytest.mark.slow
def test_a_stranger_reproduces_with_the_default_flood(stranger: Any, tmp_path: Path) -> None:
    name, profile, testbed = stranger
    outcome = run(testbed, profile, tmp_path)
    assert_verdict(outcome, "reproduced")
    startup = outcome.output("observe-fresh-instance-startup")
    failed = startup["failed_phase"]
    if name == "ledger":
        # its cause is in its own words on the line it gave up with: mapped
        assert (failed["name"], failed["cause"], startup["exit_code"]) == (
            "db-pool",
            "too_many_connections",
            1,
        )
        assert "msg=gave-up" in failed["cause_text"]  # the line it gave up with says why
        assert startup["unreported"] == []
    elif name == "tally":
        # its SQLSTATE in the line it gave up with; its own exit code
        assert (failed["name"], failed["cause"], startup["exit_code"]) == (
            "dial-postgres",
            "too_many_connections",
            75,
        )
        assert "53300" in failed["cause_text"]
    else:
        # it names no cause: neither met nor unmet, and the rest decides
        assert (failed["name"], failed["cause"], startup["exit_code"]) == ("DATABASE", None, 3)
        assert outcome.expectation("phase3_cause")["inconclusive"] == (
            "the service's startup log does not report failed_phase.cause"
        )
    assert leftovers(testbed.home) == []


@pytest.mark.slow
def test_the_sweep_finds_a_strangers_boundary_where_the_testbed_puts_it(
    stranger: Any, tmp_path: Path
) -> None:
    """Two connections short of filling the room leaves the service its pool
    (tolerated), one past it does not (reproduced), and the breaking point between."""
    _, profile, testbed = stranger
    inside = testbed.database_room() - held_pool(testbed)
    result = chaos(
        "gameday",
        "limit",
        "experiments/smd-phase3-timeout.json",
        "--profile",
        str(profile),
        "--from",
        str(inside - 2),
        "--to",
        str(inside + 1),
        "--journals",
        str(tmp_path),
        home=testbed.home,
        timeout_s=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (limit_path,) = tmp_path.glob("limit-*/limit.json")
    limit = json.loads(limit_path.read_text())
    verdicts = {p["value"]: p["verdict"] for p in limit["probes"]}
    assert (verdicts[inside - 2], verdicts[inside + 1]) == ("tolerated", "reproduced")
    assert (limit["status"], limit["breaking_point"]) == ("found", inside)
    assert leftovers(testbed.home) == []
