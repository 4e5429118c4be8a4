"""Whole experiments through `chaos run`, as a user runs them on a fresh clone (slow)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.state import read_state
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


def _run(name: str, home: Path, journal_path: Path) -> dict:
    result = chaos(
        "run", "--journal-path", str(journal_path), f"experiments/{name}.json", home=home
    )
    assert result.returncode == 0, result.stderr
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed"
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
    kit = journal["startup_chaos_kit"]
    unmet = [e for e in kit["expectations"] if not e["met"]]
    assert kit["verdict"] == "reproduced", (kit["reason"], unmet)
    assert kit["recovery"]["recovered"] is True
    assert read_state() is None
    return journal


def _phase3(journal: dict) -> dict:
    startup = _by_name(journal)["observe-fresh-instance-startup"]["output"]
    assert startup["exit_code"] == 3
    assert [p["status"] for p in startup["phases"]][2:] == ["timeout"] + ["blocked"] * 4
    return startup["failed_phase"]


def _restored(journal: dict) -> dict:
    restored = _by_name(journal)["restore-connector"]["output"]
    assert restored["restored"] is True
    return restored["state"]


def test_connector_concurrent_connections_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("vpc-connector-concurrent-connections", testbed_home, tmp_path / "j.json")
    runs = _by_name(journal)
    flood = runs["flood-through-connector"]["output"]
    assert flood["attempted"] == 55
    assert flood["failed"]["connect_timeout"] / flood["attempted"] > 0.15
    assert runs["connector-before-flood"]["output"]["utilisation"] < 0.7
    assert runs["connector-during-flood"]["output"]["utilisation"] == 1.0
    assert _phase3(journal)["cause"] == "connect_timeout"
    after = _restored(journal)
    assert after["config"]["scaling_delay_s"] == 3.0  # the testbed's own, put back


def test_connector_scaling_delay_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("vpc-connector-scaling-delay", testbed_home, tmp_path / "j.json")
    runs = _by_name(journal)
    failed = _phase3(journal)
    events = {e["type"]: e for e in runs["connector-scaling-events"]["output"]}
    assert events["scaled_out"]["waited_s"] >= 5.0
    # the new instance came after Phase 3 had already given up
    phase3_end = datetime.fromisoformat(failed["started_at"]).timestamp() + failed["elapsed_s"]
    assert events["scaled_out"]["time"] > phase3_end
    assert runs["connector-after-scale-out"]["output"]["instances"] == 3
    assert _restored(journal)["instances"] == 2


def test_connector_throughput_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("vpc-connector-throughput", testbed_home, tmp_path / "j.json")
    assert _phase3(journal)["cause"] == "slow_schema_query"
    runs = _by_name(journal)
    assert runs["connector-during-throttle"]["output"]["throughput_mbps"] == 8.0
    assert _restored(journal)["throughput_mbps"] == 200.0


def test_cloudsql_pool_exhaustion_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("cloudsql-pool-exhaustion", testbed_home, tmp_path / "j.json")
    storm = _by_name(journal)["acquisition-storm-on-one-pool"]["output"]
    assert (storm["startups"], storm["pool_capacity"]) == (35, 25)
    assert storm["succeeded"] == 25
    assert storm["failed"] == {"pool_timeout": 10}
    assert storm["pool_peak_utilisation"] > 0.8


def test_cloudsql_resource_pressure_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("cloudsql-resource-pressure", testbed_home, tmp_path / "j.json")
    runs = _by_name(journal)
    before = runs["connection-time-before-pressure"]["output"]["latency"]["p50_s"]
    under = runs["connection-time-under-cpu-pressure"]["output"]["latency"]["p50_s"]
    assert under > 2.5 * before  # the seeds' degradation: 10 s to 25 s and more
    assert runs["server-pressure-during-startup"]["output"]["waiting_on_locks"] >= 1
    assert _phase3(journal)["cause"] == "slow_schema_query"


def test_cloudsql_connection_acquisition_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("cloudsql-connection-acquisition", testbed_home, tmp_path / "j.json")
    runs = _by_name(journal)
    assert runs["reduce-max-connections"]["output"] == {"max_connections": 50, "previous": 100}
    storm = runs["concurrent-startups"]["output"]
    assert storm["startups"] == 12
    assert storm["exceeded_share"] > 0.2
    assert runs["restore-max-connections"]["output"] == {"restored": True, "max_connections": 100}


def test_smd_cascade_blocking_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("smd-cascade-blocking", testbed_home, tmp_path / "j.json")
    phases = _by_name(journal)["observe-fresh-instance-startup"]["output"]["phases"]
    assert [(p["name"], p["status"]) for p in phases] == [
        ("init", "succeeded"), ("dependencies", "succeeded"), ("database", "timeout"),
        ("cache", "blocked"), ("services", "blocked"), ("websocket", "blocked"),
        ("finalize", "blocked"),
    ]  # fmt: skip
    assert all(p["started_at"] is None for p in phases[3:])  # blocked phases never ran


def test_lifespan_exit_code_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("lifespan-exit-code", testbed_home, tmp_path / "j.json")
    starts = _by_name(journal)["repeated-cold-starts"]["output"]
    assert starts["starts"] == 5
    assert starts["exit_codes"] == {"3": 5}
    assert starts["startup_failed"] == 5


def test_monitoring_early_warning_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("monitoring-early-warning", testbed_home, tmp_path / "j.json")
    lead = next(
        e
        for e in journal["startup_chaos_kit"]["expectations"]
        if e["name"] == "warning_lead_time_s"
    )
    assert lead["observed"] >= 1.2
    assert _by_name(journal)["early-warning"]["output"]["warned"] is True


def test_compound_pressure_experiment(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("compound-pressure", testbed_home, tmp_path / "j.json")
    compound = _by_name(journal)["compound-pressure"]["output"]
    assert compound["risk"] == "high_risk"
    assert {"vpc_connector_utilisation", "cloud_sql_pool_utilisation"} <= set(
        compound["over_threshold"]
    )


def test_full_chain_experiment_shows_all_six_steps(testbed_home: Path, tmp_path: Path) -> None:
    journal = _run("issue-1278-full-chain", testbed_home, tmp_path / "j.json")
    kit = journal["startup_chaos_kit"]
    assert {e["step"] for e in kit["expectations"] if e["met"]} == {1, 2, 3, 4, 5, 6}
    assert kit["recovery"]["time_to_recover_s"] > 0
    timeline = kit["timeline"]
    assert max(s["connector_utilisation"] for s in timeline) == 1.0
    assert min(s["elapsed_s"] for s in timeline) == 0.0
