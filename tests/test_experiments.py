"""Every shipped experiment through `chaos run`, as a user runs it, on a testbed kept up
for the module (slow).

Each verdict must follow the physics: the boundary of each experiment is computed here,
from the live testbed (max_connections, the slots PostgreSQL reserves, the sessions held
at rest, the run's observer, the connector's capacity and its connections at rest, the
pool figures), never copied from a profile; just inside it the run is `tolerated`, just
past it `reproduced`, with pool sizes and connector capacities other than the defaults,
and repeated where a flaky boundary would show. The shipped defaults reproduce, with the
detail the incident's chain names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chaoskit.kit.processes import pid_alive
from chaoskit.kit.settings import embedded_profile
from chaoskit.targets.database import OBSERVER_SESSIONS, database_sessions
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.state import read_state
from tests.conftest import REPO, Testbed, kept_testbed
from tests.test_testbed import chaos

pytestmark = pytest.mark.slow
PROFILE = embedded_profile()


@pytest.fixture(scope="module")
def testbed(kit_dirs: Callable[[str], Path]) -> Iterator[Testbed]:
    with kept_testbed(kit_dirs("experiments") / ".testbed") as kept:
        yield kept


@dataclass
class Run:
    code: int
    journal: dict[str, Any]

    @property
    def kit(self) -> dict[str, Any]:
        return self.journal["startup_chaos_kit"]

    @property
    def verdict(self) -> str:
        return self.kit["verdict"]

    def output(self, activity: str) -> Any:
        runs = self.journal["run"] + self.journal["rollbacks"]
        return next(r["output"] for r in runs if r["activity"]["name"] == activity)

    def expectation(self, name: str) -> dict[str, Any]:
        return next(e for e in self.kit["expectations"] if e["name"] == name)


def run(testbed: Testbed, name: str, tmp_path: Path, **settings: object) -> Run:
    """`chaos run experiments/<name>.json` with `settings` as CHAOS_* variables."""
    journal = tmp_path / f"{name}-{len(list(tmp_path.glob('*.json')))}.json"
    env = {f"CHAOS_{key.upper()}": str(value) for key, value in settings.items()}
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        f"experiments/{name}.json",
        home=testbed.home,
        timeout_s=300,
        **env,
    )
    outcome = Run(result.returncode, json.loads(journal.read_text()))
    assert outcome.journal["steady_states"]["before"]["steady_state_met"] is True, result.stdout
    assert all(r["status"] == "succeeded" for r in outcome.journal["rollbacks"])
    assert outcome.kit["recovery"]["recovered"] is True
    return outcome


def assert_verdict(outcome: Run, verdict: str) -> None:
    unmet = [e for e in outcome.kit["expectations"] if not e["met"]]
    assert outcome.verdict == verdict, (outcome.kit["reason"], unmet, outcome.kit["startup"])
    assert outcome.code == (0 if verdict in ("reproduced", "tolerated") else 1)
    # no expectation given: as expected is `chaos run`'s own rule, as its exit code says
    assert (outcome.kit["expected"], outcome.kit["as_expected"]) == (None, outcome.code == 0)


def phase3(outcome: Run, activity: str = "observe-fresh-instance-startup") -> dict[str, Any]:
    startup = outcome.output(activity)
    assert startup["exit_code"] == 3 and startup["startup_failed"] is True
    assert [p["status"] for p in startup["phases"]] == (
        ["succeeded", "succeeded", "timeout"] + ["blocked"] * 4
    )
    return startup["failed_phase"]


# --- the database's room: floods straight to PostgreSQL ---------------------------------


@pytest.mark.parametrize("pool", [4, 7])
def test_phase3_timeout_follows_the_database_room(
    testbed: Testbed, tmp_path: Path, pool: int
) -> None:
    # (that the boundary holds run after run is the breaking-point sweep's `--repeat`)
    room = testbed.database_room()
    inside = room - pool  # the flood leaves exactly the fresh instance's pool
    tolerated = run(
        testbed, "smd-phase3-timeout", tmp_path, flood_connections=inside, pool_size=pool
    )
    assert_verdict(tolerated, "tolerated")
    assert tolerated.output("flood-database-connections")["established"] == inside
    past = run(
        testbed, "smd-phase3-timeout", tmp_path, flood_connections=inside + 1, pool_size=pool
    )
    assert_verdict(past, "reproduced")
    # the flood itself fits: only the fresh instance is refused, and it counts
    flood = past.output("flood-database-connections")
    assert flood["established"] == inside + 1 and flood["failed"] == {}
    assert phase3(past)["cause"] == "too_many_connections"


def test_an_expectation_gates_a_fix(testbed: Testbed, tmp_path: Path) -> None:
    """A CI job's gate: `CHAOS_EXPECT=tolerated` fails while the bug reproduces and passes
    once a remediation holds; `CHAOS_EXPECT=reproduced` passes on the reproduction."""

    def gated(expect: str, *args: str) -> tuple[int, str, dict[str, Any]]:
        journal = tmp_path / f"gate-{len(list(tmp_path.glob('gate-*')))}.json"
        result = chaos(
            "run",
            "--journal-path",
            str(journal),
            *args,
            "experiments/smd-phase3-timeout.json",
            home=testbed.home,
            timeout_s=300,
            CHAOS_EXPECT=expect,
        )
        (line,) = [line for line in result.stderr.splitlines() if "Verdict: " in line]
        kit = json.loads(journal.read_text())["startup_chaos_kit"]
        return result.returncode, line, kit

    code, line, kit = gated("tolerated")
    expected = (1, "reproduced", "tolerated", False)
    assert (code, kit["verdict"], kit["expected"], kit["as_expected"]) == expected, kit["reason"]
    assert "ERROR" in line and "Verdict: reproduced, expected tolerated: pressure applied" in line
    # the fix: a flood that leaves the fresh instance's pool its room, on this testbed
    pool = PROFILE["pool_size"]
    remediation = tmp_path / "remediation.json"
    remediation.write_text(
        json.dumps(
            {
                "configuration": {
                    "flood_connections": testbed.database_room() - pool,
                    "pool_size": pool,
                }
            }
        )
    )
    code, line, kit = gated("tolerated", "--var-file", str(remediation))
    assert (code, kit["verdict"], kit["as_expected"]) == (0, "tolerated", True), kit["reason"]
    assert "Verdict: tolerated, as expected (the startup succeeded under pressure" in line
    code, line, kit = gated("reproduced")
    expected = (0, "reproduced", "reproduced", True)
    assert (code, kit["verdict"], kit["expected"], kit["as_expected"]) == expected
    assert "Verdict: reproduced, as expected (" in line


def test_phase3_timeout_defaults_reproduce_and_mask_the_password(
    testbed: Testbed, tmp_path: Path
) -> None:
    outcome = run(testbed, "smd-phase3-timeout", tmp_path)
    assert_verdict(outcome, "reproduced")
    flood = outcome.output("flood-database-connections")
    assert flood["established"] > 0 and flood["failed"]["too_many_connections"] > 0
    assert phase3(outcome)["cause"] == "too_many_connections"
    assert outcome.output("stop-connection-flood")["released"] == flood["established"]
    assert not pid_alive(outcome.output("cold-start-fresh-instance")["pid"])
    text = json.dumps(outcome.journal)
    assert ":***@" in text and "app:" not in text.replace("app:***", "")
    assert outcome.kit["baseline_reset"] == []  # every run left the testbed at its baseline


def test_repeated_starts_follow_the_database_room(testbed: Testbed, tmp_path: Path) -> None:
    pool = PROFILE["pool_size"]
    inside = testbed.database_room() - pool
    tolerated = run(testbed, "lifespan-exit-code", tmp_path, flood_connections=inside)
    assert_verdict(tolerated, "tolerated")
    assert tolerated.output("repeated-cold-starts")["ready"] == 5
    past = run(testbed, "lifespan-exit-code", tmp_path, flood_connections=inside + 1)
    assert_verdict(past, "reproduced")
    starts = past.output("repeated-cold-starts")
    assert starts["exit_codes"] == {"3": 5} and starts["startup_failed"] == 5


def test_early_warning_follows_the_database_room(testbed: Testbed, tmp_path: Path) -> None:
    inside = testbed.database_room() - PROFILE["pool_size"]
    tolerated = run(testbed, "monitoring-early-warning", tmp_path, flood_connections=inside)
    assert_verdict(tolerated, "tolerated")
    assert tolerated.output("early-warning")["warned"] is True  # the pressure was there
    past = run(testbed, "monitoring-early-warning", tmp_path, flood_connections=inside + 1)
    assert_verdict(past, "reproduced")
    lead = past.expectation("warning_lead_time_s")
    assert lead["met"] and lead["observed"] >= 1.2


# --- the connector's room: floods through the VPC connector model ------------------------


def connector_room(testbed: Testbed, per_instance: int | None = None) -> int:
    """Connections a flood may take through the connector and still leave a fresh
    instance's pool: its capacity at `per_instance` connections an instance, less the
    connections it carries at rest (the long-running service's pool) and the pool."""
    state = testbed.connector()
    per_instance = per_instance or state["config"]["connections_per_instance"]
    return state["instances"] * per_instance - state["active"] - PROFILE["pool_size"]


def test_connector_capacity_follows_the_connector_room(testbed: Testbed, tmp_path: Path) -> None:
    inside = connector_room(testbed, per_instance=20)  # not the experiment's default 25
    capacity = {"connector_connections_per_instance": 20}
    for _ in range(2):
        tolerated = run(
            testbed,
            "vpc-connector-concurrent-connections",
            tmp_path,
            flood_connections=inside,
            **capacity,
        )
        assert_verdict(tolerated, "tolerated")
        past = run(
            testbed,
            "vpc-connector-concurrent-connections",
            tmp_path,
            flood_connections=inside + 1,
            **capacity,
        )
        assert_verdict(past, "reproduced")
        # the flood's own connects all got through: the instance waited in the queue
        assert past.output("flood-through-connector")["failed"] == {}
        assert phase3(past)["cause"] == "connect_timeout"
        assert past.output("restore-connector")["state"]["drift"] == []


def test_connector_capacity_defaults_reproduce(testbed: Testbed, tmp_path: Path) -> None:
    outcome = run(testbed, "vpc-connector-concurrent-connections", tmp_path)
    assert_verdict(outcome, "reproduced")
    flood = outcome.output("flood-through-connector")
    assert flood["attempted"] == 55
    assert flood["failed"]["connect_timeout"] / flood["attempted"] > 0.15  # the plan's 15 %
    assert outcome.output("connector-during-flood")["utilisation"] == 1.0
    restored = outcome.output("restore-connector")
    assert restored["restored"] is True
    assert restored["state"]["config"]["scaling_delay_s"] == 3.0  # the testbed's own, back


def test_full_chain_follows_the_connector_room(testbed: Testbed, tmp_path: Path) -> None:
    inside = connector_room(testbed) + PROFILE["pool_size"] - 3  # a pool of 3, not 5
    tolerated = run(
        testbed, "issue-1278-full-chain", tmp_path, flood_connections=inside, pool_size=3
    )
    assert_verdict(tolerated, "tolerated")
    past = run(
        testbed, "issue-1278-full-chain", tmp_path, flood_connections=inside + 1, pool_size=3
    )
    assert_verdict(past, "reproduced")
    assert phase3(past)["cause"] == "connect_timeout"


def test_full_chain_defaults_show_all_six_steps(testbed: Testbed, tmp_path: Path) -> None:
    outcome = run(testbed, "issue-1278-full-chain", tmp_path)
    assert_verdict(outcome, "reproduced")
    met = {e["step"] for e in outcome.kit["expectations"] if e["met"]}
    assert met == {1, 2, 3, 4, 5, 6}
    assert outcome.kit["recovery"]["time_to_recover_s"] > 0
    timeline = outcome.kit["timeline"]
    assert max(s["connector_utilisation"] for s in timeline) == 1.0
    assert min(s["elapsed_s"] for s in timeline) == 0.0


def test_compound_pressure_follows_both_rooms(testbed: Testbed, tmp_path: Path) -> None:
    connector_inside = connector_room(testbed)
    # the direct flood leaves the database room for both floods' connections and the pool
    database_flood = testbed.database_room() - connector_inside - PROFILE["pool_size"] - 1
    sessions = database_sessions(testbed.admin_dsn)
    busy = (sessions["in_use"] + connector_inside + database_flood) / sessions["max_connections"]
    assert busy > PROFILE["pool_threshold"]  # the database is under pressure on both sides
    tolerated = run(
        testbed,
        "compound-pressure",
        tmp_path,
        connector_flood_connections=connector_inside,
        database_flood_connections=database_flood,
    )
    assert_verdict(tolerated, "tolerated")
    assert tolerated.output("compound-pressure")["risk"] == "high_risk"
    past = run(
        testbed,
        "compound-pressure",
        tmp_path,
        connector_flood_connections=connector_inside + 1,
        database_flood_connections=database_flood,
    )
    assert_verdict(past, "reproduced")
    compound = past.output("compound-pressure")
    assert {"vpc_connector_utilisation", "cloud_sql_pool_utilisation"} <= set(
        compound["over_threshold"]
    )


# --- time on either side of Phase 3's deadline -------------------------------------------


def test_scaling_delay_against_phase3s_deadline(testbed: Testbed, tmp_path: Path) -> None:
    # no delay: the new instance is there before the fresh instance connects
    tolerated = run(testbed, "vpc-connector-scaling-delay", tmp_path, connector_scaling_delay_s=0)
    assert_verdict(tolerated, "tolerated")
    for _ in range(2):  # twice in a row on the kept testbed: the same verdict
        past = run(testbed, "vpc-connector-scaling-delay", tmp_path)
        assert_verdict(past, "reproduced")
        failed = phase3(past)
        scale_out = past.output("connector-scale-out")
        assert scale_out["happened"] is True
        assert scale_out["event"]["waited_s"] >= 12.0  # the experiment's scaling delay
        phase3_end = datetime.fromisoformat(failed["started_at"]).timestamp() + failed["elapsed_s"]
        assert scale_out["event"]["time"] > phase3_end  # the instance came after Phase 3 gave up
        assert past.output("restore-connector")["state"]["instances"] == 2


def test_throughput_against_phase3s_deadline(testbed: Testbed, tmp_path: Path) -> None:
    load_bits = 8 * 8_000_000  # the experiment's schema_load_bytes
    deadline_s = PROFILE["initialization_timeout_s"]
    quick = math.ceil(load_bits / (deadline_s / 4) / 1e6)  # the load takes a quarter
    assert quick <= testbed.connector()["throughput_mbps"]  # below the instances' share
    tolerated = run(testbed, "vpc-connector-throughput", tmp_path, throttled_mbps=quick)
    assert_verdict(tolerated, "tolerated")
    slow = round(load_bits / (deadline_s * 3) / 1e6, 2)  # the load takes three times it
    past = run(testbed, "vpc-connector-throughput", tmp_path, throttled_mbps=slow)
    assert_verdict(past, "reproduced")
    assert phase3(past)["cause"] == "slow_schema_query"
    assert past.output("connector-during-throttle")["throughput_mbps"] == slow
    assert past.output("restore-connector")["state"]["throughput_mbps"] == 200.0


@pytest.mark.parametrize("experiment", ["smd-cascade-blocking", "cloudsql-resource-pressure"])
def test_a_lock_held_past_phase3s_deadline(
    testbed: Testbed, tmp_path: Path, experiment: str
) -> None:
    # released as soon as taken: long before the fresh instance reaches its schema check
    tolerated = run(testbed, experiment, tmp_path, lock_duration_s=0.01)
    assert_verdict(tolerated, "tolerated")
    past = run(testbed, experiment, tmp_path)
    assert_verdict(past, "reproduced")
    assert phase3(past)["cause"] == "slow_schema_query"
    phases = past.output("observe-fresh-instance-startup")["phases"]
    assert all(p["started_at"] is None for p in phases[3:])  # blocked phases never ran
    if experiment == "cloudsql-resource-pressure":
        before = past.output("connection-time-before-pressure")["latency"]["p50_s"]
        under = past.output("connection-time-under-cpu-pressure")["latency"]["p50_s"]
        assert under > 2.5 * before  # the plan's degradation: 10 s to 25 s and more
        assert past.output("server-pressure-during-startup")["waiting_on_locks"] >= 1


# --- pools and the database's size ---------------------------------------------------------


def test_pool_exhaustion_follows_pool_size_and_overflow(testbed: Testbed, tmp_path: Path) -> None:
    pool = {"storm_pool_size": 6, "storm_max_overflow": 4}  # not the plan's 10 + 15
    capacity = sum(pool.values())
    tolerated = run(testbed, "cloudsql-pool-exhaustion", tmp_path, storm_startups=capacity, **pool)
    assert_verdict(tolerated, "tolerated")
    past = run(testbed, "cloudsql-pool-exhaustion", tmp_path, storm_startups=capacity + 1, **pool)
    assert_verdict(past, "reproduced")
    storm = past.output("acquisition-storm-on-one-pool")
    assert (storm["succeeded"], storm["failed"]) == (capacity, {"pool_timeout": 1})
    defaults = run(testbed, "cloudsql-pool-exhaustion", tmp_path)
    assert_verdict(defaults, "reproduced")
    storm = defaults.output("acquisition-storm-on-one-pool")
    assert (storm["startups"], storm["pool_capacity"], storm["succeeded"]) == (35, 25, 25)
    assert storm["failed"] == {"pool_timeout": 10} and storm["pool_peak_utilisation"] > 0.8


def test_connection_acquisition_follows_the_smaller_database(
    testbed: Testbed, tmp_path: Path
) -> None:
    reduced, pool = 40, PROFILE["pool_size"]  # not the experiment's default 50
    sessions = database_sessions(testbed.admin_dsn)
    # the restart to the smaller size restarts the long-running service too, which holds
    # its pool again as at rest
    room = reduced - sessions["reserved"] - sessions["in_use"] - OBSERVER_SESSIONS
    inside = room // pool
    assert (inside + 1) * pool > room
    tolerated = run(
        testbed,
        "cloudsql-connection-acquisition",
        tmp_path,
        reduced_max_connections=reduced,
        storm_startups=inside,
    )
    assert_verdict(tolerated, "tolerated")
    past = run(
        testbed,
        "cloudsql-connection-acquisition",
        tmp_path,
        reduced_max_connections=reduced,
        storm_startups=inside + 1,
    )
    assert_verdict(past, "reproduced")
    assert past.output("reduce-max-connections")["max_connections"] == reduced
    restored = past.output("restore-max-connections")
    assert restored == {"restored": True, "max_connections": 100}


# --- every run starts from the baseline ----------------------------------------------------


def test_a_drifted_testbed_is_reset_before_the_run(testbed: Testbed, tmp_path: Path) -> None:
    connector = ConnectorClient(testbed.state["connector"]["url"])
    connector.configure({"instances": 3, "scaling_delay_s": 0.5})  # as a killed run leaves it
    outcome = run(testbed, "vpc-connector-scaling-delay", tmp_path)
    assert_verdict(outcome, "reproduced")
    (reset,) = outcome.kit["baseline_reset"]
    assert reset.startswith("connector (") and "instances" in reset
    assert connector.state()["drift"] == []


def test_an_experiment_without_a_testbed_brings_one_up_and_takes_it_down(
    testbed_home: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
        timeout_s=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(journal.read_text())["startup_chaos_kit"]["verdict"] == "reproduced"
    assert read_state() is None


def test_every_shipped_experiment_is_tested_here() -> None:
    tested = (Path(__file__)).read_text()
    for experiment in (REPO / "experiments").glob("*.json"):
        assert f'"{experiment.stem}"' in tested, experiment.name


def test_a_keyword_dsn_works_and_its_password_is_masked_everywhere(
    testbed: Testbed, tmp_path: Path
) -> None:
    from urllib.parse import unquote, urlsplit

    url = urlsplit(testbed.state["postgres"]["app_dsn"])
    password = unquote(url.password)
    keyword_dsn = (
        f"host={url.hostname} port={url.port} user={url.username} password={password} dbname=app"
    )
    journal, log = tmp_path / "journal.json", tmp_path / "chaostoolkit.log"
    result = chaos(
        "run",
        "--journal-path",
        str(journal),
        "experiments/smd-phase3-timeout.json",
        home=testbed.home,
        timeout_s=300,
        log_file=log,
        CHAOS_DIRECT_DATABASE_URL=keyword_dsn,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(journal.read_text())["startup_chaos_kit"]["verdict"] == "reproduced"
    report = tmp_path / "report.json"
    chaos(
        "gameday",
        "report",
        str(journal),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(report),
        home=testbed.home,
    )
    for text in (
        result.stdout,
        result.stderr,
        journal.read_text(),
        log.read_text(),
        report.read_text(),
        (tmp_path / "r.html").read_text(),
    ):
        assert password not in text
