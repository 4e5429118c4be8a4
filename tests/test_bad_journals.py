"""No journal stops the review: a field of the wrong type anywhere the report or
`chaos gameday recommend` reads (every nested field, checked as the top level is) makes
that one journal unreadable, listed with the field's path, and the rest is reported.

The journal the cases start from has the shape of a real one from the README's example
service (`examples/inventory-service`, whose database phase is `connect-database`, its
Phase 3 `load-catalogue` blocked with no elapsed time); tests/test_report.py reads real
ones. Each case puts one wrong-typed value at one path.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chaoskit.gameday.recommend import recommend
from chaoskit.report.report import build_report, render_html, render_markdown, write_reports
from tests.test_gameday import skipped_gameday
from tests.test_testbed import chaos

T0 = "2026-11-01T22:00:00+00:00"


def at(seconds: float) -> str:
    return f"2026-11-01T22:00:{seconds:06.3f}+00:00"


def kit(module: str) -> str:
    return f"chaoskit.{module}"


def _run(name: str, module: str, func: str, output: Any, start: float, **more: Any) -> dict:
    return {
        "activity": {
            "type": "probe",
            "name": name,
            "provider": {
                "type": "python",
                "module": module,
                "func": func,
                "arguments": more.pop("arguments", {}),
            },
        },
        "status": "succeeded",
        "start": at(start),
        "end": at(start + 0.5),
        "duration": 0.5,
        "output": output,
        **more,
    }


STARTUP = {
    "instance": "phase3-candidate",
    "ready": False,
    "exit_code": 1,
    "duration_s": 3.25,
    "initialization_timeout_s": 3.0,
    "startup_failed": True,
    "failure_at": at(5.1),
    "failed_phase": {
        "phase": 2,
        "name": "connect-database",
        "status": "timeout",
        "started_at": at(2.1),
        "elapsed_s": 3.002,
        "cause": "too_many_connections",
    },
    "phases": [
        {
            "phase": 1,
            "name": "read-settings",
            "status": "succeeded",
            "started_at": at(2.0),
            "elapsed_s": 0.001,
            "cause": None,
        },
        {
            "phase": 2,
            "name": "connect-database",
            "status": "timeout",
            "started_at": at(2.1),
            "elapsed_s": 3.002,
            "cause": "too_many_connections",
        },
        {
            "phase": 3,
            "name": "load-catalogue",
            "status": "blocked",
            "started_at": None,
            "elapsed_s": None,
            "cause": None,
        },
        {
            "phase": 4,
            "name": "serve-http",
            "status": "blocked",
            "started_at": None,
            "elapsed_s": None,
            "cause": None,
        },
    ],
    "phases_after_failure": ["blocked", "blocked"],
    "unreported": [],
}
FLOOD = {
    "applied": True,
    "attempted": 120,
    "established": 91,
    "failed": {"too_many_connections": 29},
    "connect_latency": {"max_s": 0.18, "p50_s": 0.13},
}
CONNECTOR = {
    "active": 50,
    "capacity": 50,
    "waiting": 5,
    "utilisation": 1.0,
    "instances": 2,
    "config": {"connections_per_instance": 25, "queue_timeout_s": 5.0},
    "event": {"type": "scaled_out", "at": at(4.0)},
}
REPEATED = {
    "starts": 2,
    "ready": 0,
    "startup_failed": 2,
    "exit_codes": {"1": 2},
    "failed_phases": {"2:timeout:too_many_connections": 2},
    "reports": [copy.deepcopy(STARTUP)],
}
STORM = {
    "startups": 35,
    "pool_size": 10,
    "max_overflow": 15,
    "failed": {"pool_timeout": 10},
    "pool_peak_utilisation": 1.0,
    "timeout_threshold_s": 1.0,
    "acquisition": {"max_s": 0.06},
}
WARNING = {"warned_at": at(3.0), "indicators": {"vpc_connector_utilisation": 0.8}}
EXPECTATIONS = [
    {
        "name": "flood_applied",
        "step": 2,
        "kind": "pressure",
        "expected": "== true",
        "observed": True,
        "met": True,
    },
    {
        "name": "phase3_is_database",
        "step": 3,
        "kind": "outcome",
        "expected": "== connect-database",
        "observed": "connect-database",
        "met": True,
    },
    {
        "name": "failure_exit_code",
        "step": 5,
        "kind": "outcome",
        "expected": "== 1",
        "observed": 1,
        "met": True,
    },
]
JOURNAL: dict[str, Any] = {
    "chaoslib-version": "1.44.0",
    "status": "completed",
    "start": T0,
    "end": at(9.0),
    "duration": 9.0,
    "deviated": False,
    "experiment": {
        "title": "Phase 3 (database) times out",
        "contributions": {"reliability": "high"},
        "rollbacks": [{}],
        "steady-state-hypothesis": {"probes": [{}]},
    },
    "steady_states": {
        "before": {
            "steady_state_met": True,
            "probes": [
                _run(
                    "fresh-instance-starts",
                    kit("probes.service"),
                    "cold_start",
                    {"ready": True},
                    0.1,
                    tolerance_met=True,
                )
            ],
        },
        "during": [],
        "after": None,
    },
    "run": [
        _run(
            "flood-database-connections",
            kit("actions.flood"),
            "start_connection_flood",
            FLOOD,
            1.0,
            arguments={
                "connections": "${flood_connections}",
                "target_dsn": "${direct_database_url}",
            },
        ),
        _run(
            "connector-under-pressure", kit("probes.connector"), "connector_state", CONNECTOR, 1.5
        ),
        _run(
            "observe-fresh-instance-startup", kit("probes.service"), "observe_startup", STARTUP, 2.0
        ),
        _run("repeated-cold-starts", kit("probes.service"), "repeated_cold_starts", REPEATED, 5.5),
        _run("acquisition-storm", kit("probes.database"), "run_acquisition_storm", STORM, 6.0),
        _run("early-warning", kit("probes.pressure"), "early_warning", WARNING, 6.5),
        # a user's own probe: its output is theirs, neither checked nor read
        _run("team-check", "acme.checks", "probe", {"phases": "theirs", "ready": "maybe"}, 7.0),
    ],
    "rollbacks": [
        _run(
            "stop-connection-flood",
            kit("actions.flood"),
            "stop_connection_flood",
            {"released": True},
            7.5,
        )
    ],
    "startup_chaos_kit": {
        "verdict": "reproduced",
        "reason": "pressure applied and all 2 outcome expectations met",
        "target": "embedded",
        "database_phase": "connect-database",
        "experiment_file": "experiments/smd-phase3-timeout.json",
        "expectations": EXPECTATIONS,
        "recovery": {"recovered": True, "time_to_recover_s": 0.3},
        "timeline": [
            {
                "at": at(0.5),
                "connector_utilisation": 0.1,
                "database_utilisation": 0.05,
                "flood_connections": 0,
                "connector_active": 5,
                "connector_waiting": 0,
            },
            {
                "at": at(3.0),
                "connector_utilisation": 1.0,
                "database_utilisation": 0.97,
                "flood_connections": 91,
                "connector_active": 50,
                "connector_waiting": 5,
            },
        ],
        "figures": {
            "initialization_timeout_s": 3.0,
            "connect_timeout_s": 1.0,
            "pool_size": 5,
            "max_overflow": 5,
            "pool_timeout_s": 3.0,
            "connector_threshold": 0.7,
            "pool_threshold": 0.8,
            "connect_delay_threshold_s": 0.5,
            "failure_exit_code": 1,
            "flood_connections": 120,
        },
        "capacity": {
            "max_connections": 100,
            "reserved": 3,
            "in_use_at_rest": 6,
            "connector_instances": 2,
            "connector_connections_per_instance": 25,
            "connector_active_at_rest": 5,
        },
        "stop_conditions": {"stopped_by": {"at": "2026-11-01T22:00:08", "condition": "pool_pct"}},
    },
}
SUMMARY = {
    "gameday_id": "gd-20261101T215959Z-0001",
    "name": "nightly",
    "target": "embedded",
    "suite": "experiments/gameday.toml",
    "profiles": ["night.json"],
    "status": "completed",
    "started_at": "2026-11-01T21:59:59+00:00",
    "ended_at": at(9.5),
    "preflight": {"healthy": True, "reasons": []},
    "experiments": [
        {
            "name": "smd-phase3-timeout",
            "expected": "reproduced",
            "file": "experiments/smd-phase3-timeout.json",
        }
    ],
}
LIMIT = {
    "experiment": "experiments/smd-phase3-timeout.json",
    "knob": "flood_connections",
    "unit": "connections",
    "status": "found",
    "breaking_point": 85,
    "broken_at": 86,
    "deterministic": True,
    "message": "breaking point 85",
    "headroom": {"current_value": 120, "room": -35},
    "probes": [{"value": 85, "verdict": "tolerated"}, {"value": 86, "verdict": "reproduced"}],
}

# (path, wrong value): one case per field the report or the recommendations read
JOURNAL_CASES: list[tuple[str, Any]] = [
    ("status", None),
    ("start", 5),
    ("start", "the morning"),
    ("end", 5),
    ("duration", "9s"),
    ("experiment", "title"),
    ("experiment.title", 5),
    ("experiment.contributions", ["high"]),
    ("experiment.contributions.reliability", 1),
    ("experiment.rollbacks", {}),
    ("experiment.steady-state-hypothesis", "probes"),
    ("experiment.steady-state-hypothesis.probes", {}),
    ("run", "oops"),
    ("run[0]", "flood"),
    ("run[0].activity", "flood"),
    ("run[0].activity.name", None),
    ("run[0].activity.type", 1),
    ("run[0].activity.provider", "python"),
    ("run[0].activity.provider.module", 1),
    ("run[0].activity.provider.func", ["f"]),
    ("run[0].activity.provider.arguments", [1]),
    ("run[0].status", 0),
    ("run[0].start", "soon"),
    ("run[0].end", 1.5),
    ("run[0].duration", "0.5"),
    ("run[0].exception", "boom"),
    ("run[0].exception", [1]),
    ("run[0].output.attempted", "120"),
    ("run[0].output.established", True),
    ("run[0].output.failed", ["too_many_connections"]),
    ("run[0].output.failed.too_many_connections", "29"),
    ("run[0].output.connect_latency", 0.18),
    ("run[0].output.connect_latency.max_s", "0.18"),
    ("run[1].output.active", "50"),
    ("run[1].output.capacity", [50]),
    ("run[1].output.waiting", {}),
    ("run[1].output.utilisation", "high"),
    ("run[1].output.instances", "two"),
    ("run[1].output.config", []),
    ("run[1].output.config.connections_per_instance", "25"),
    ("run[1].output.config.queue_timeout_s", True),
    ("run[1].output.event", "scaled_out"),
    ("run[1].output.event.type", 3),
    ("run[1].output.event.at", 4),
    ("run[1].output.event.at", "at four"),
    ("run[2].output.phases", {"1": "read-settings"}),
    ("run[2].output.phases[0]", "read"),
    ("run[2].output.phases[0].phase", "1"),
    ("run[2].output.phases[0].name", 1),
    ("run[2].output.phases[0].status", True),
    ("run[2].output.phases[1].elapsed_s", "3.0"),
    ("run[2].output.phases[1].started_at", 12),
    ("run[2].output.phases[1].cause", ["x"]),
    ("run[2].output.ready", "no"),
    ("run[2].output.startup_failed", "yes"),
    ("run[2].output.failed_phase", "connect-database"),
    ("run[2].output.failed_phase.name", 2),
    ("run[2].output.failed_phase.elapsed_s", []),
    ("run[2].output.exit_code", "1"),
    ("run[2].output.exit_code", 1.5),
    ("run[2].output.initialization_timeout_s", "3"),
    ("run[2].output.failure_at", 5),
    ("run[2].output.failure_at", "later"),
    ("run[3].output.starts", "2"),
    ("run[3].output.ready", "none"),
    ("run[3].output.exit_codes", [1]),
    ("run[3].output.exit_codes.1", "2"),
    ("run[3].output.reports", {}),
    ("run[3].output.reports[0]", "report"),
    ("run[3].output.reports[0].failed_phase.name", 2),
    ("run[3].output.reports[0].phases[1].elapsed_s", "3"),
    ("run[4].output.startups", "35"),
    ("run[4].output.pool_size", "10"),
    ("run[4].output.max_overflow", []),
    ("run[4].output.failed.pool_timeout", "10"),
    ("run[4].output.pool_peak_utilisation", "full"),
    ("run[4].output.timeout_threshold_s", {}),
    ("run[5].output.warned_at", 3),
    ("run[5].output.indicators", [0.8]),
    ("run[5].output.indicators.vpc_connector_utilisation", "0.8"),
    ("rollbacks", {}),
    ("rollbacks[0].activity.name", 7),
    ("rollbacks[0].start", []),
    ("steady_states", []),
    ("steady_states.before", "met"),
    ("steady_states.before.steady_state_met", "yes"),
    ("steady_states.before.probes", {}),
    ("steady_states.before.probes[0].activity.name", []),
    ("steady_states.before.probes[0].tolerance_met", "true"),
    ("steady_states.during", {}),
    ("steady_states.during", ["met"]),
    ("safeguards", "pool_pct"),
    ("safeguards", {"run": []}),
    ("safeguards", {"run": {"exception": "x"}}),
    ("startup_chaos_kit", []),
    ("startup_chaos_kit.verdict", 1),
    ("startup_chaos_kit.reason", {}),
    ("startup_chaos_kit.target", 1),
    ("startup_chaos_kit.database_phase", 3),
    ("startup_chaos_kit.experiment_file", ["x"]),
    ("startup_chaos_kit.expectations", {}),
    ("startup_chaos_kit.expectations[0]", "met"),
    ("startup_chaos_kit.expectations[0].name", None),
    ("startup_chaos_kit.expectations[1].expected", ["== connect-database"]),
    ("startup_chaos_kit.expectations[0].met", "yes"),
    ("startup_chaos_kit.expectations[0].step", "2"),
    ("startup_chaos_kit.expectations[0].kind", 2),
    ("startup_chaos_kit.recovery", [1]),
    ("startup_chaos_kit.recovery.recovered", "yes"),
    ("startup_chaos_kit.recovery.time_to_recover_s", "0.3"),
    ("startup_chaos_kit.timeline", {}),
    ("startup_chaos_kit.timeline[1]", 3),
    ("startup_chaos_kit.timeline[1].at", None),
    ("startup_chaos_kit.timeline[1].at", "noon"),
    ("startup_chaos_kit.timeline[1].connector_utilisation", "1.0"),
    ("startup_chaos_kit.timeline[1].database_utilisation", [0.97]),
    ("startup_chaos_kit.timeline[1].flood_connections", "91"),
    ("startup_chaos_kit.timeline[1].connector_waiting", True),
    ("startup_chaos_kit.figures", [3.0]),
    ("startup_chaos_kit.figures.initialization_timeout_s", "3"),
    ("startup_chaos_kit.figures.pool_size", True),
    ("startup_chaos_kit.figures.failure_exit_code", None),
    ("startup_chaos_kit.figures.flood_connections", 1e300),
    ("startup_chaos_kit.figures.connector_threshold", float("nan")),
    ("startup_chaos_kit.capacity", "100"),
    ("startup_chaos_kit.capacity.max_connections", "100"),
    ("startup_chaos_kit.capacity.reserved", float("inf")),
    ("startup_chaos_kit.stop_conditions", "none"),
    ("startup_chaos_kit.stop_conditions.stopped_by", "pool_pct"),
    ("startup_chaos_kit.stop_conditions.stopped_by.at", 3),
    ("startup_chaos_kit.stop_conditions.stopped_by.condition", {"name": "pool_pct"}),
]
SUMMARY_CASES: list[tuple[str, Any]] = [
    ("gameday_id", 1),
    ("started_at", "yesterday"),
    ("ended_at", 3),
    ("name", []),
    ("suite", 1),
    ("target", True),
    ("profiles", "staging.json"),
    ("profiles[0]", 1),
    ("status", 0),
    ("preflight", "healthy"),
    ("preflight.healthy", "yes"),
    ("preflight.reasons", "none"),
    ("experiments", {}),
    ("experiments[0]", "smd"),
    ("experiments[0].name", None),
    ("experiments[0].expected", 1),
    ("experiments[0].file", 2),
]
LIMIT_CASES: list[tuple[str, Any]] = [
    ("experiment", 1),
    ("knob", None),
    ("probes", {}),
    ("probes[0]", 85),
    ("probes[0].value", "85"),
    ("probes[1].verdict", 1),
    ("unit", 1),
    ("status", []),
    ("breaking_point", "85"),
    ("broken_at", True),
    ("deterministic", "yes"),
    ("message", 1),
    ("headroom", 35),
    ("headroom.room", "-35"),
    ("headroom.current_value", []),
]


def with_value(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with `value` at `path` (`run[2].output.phases[0].name`)."""
    changed = copy.deepcopy(document)
    node: Any = changed
    steps = path.replace("]", "").replace("[", ".").split(".")
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node[step]
    last = steps[-1]
    node[int(last) if isinstance(node, list) else last] = value
    return changed


def gameday(root: Path, journal: dict[str, Any] | None = None, **files: Any) -> Path:
    """A game day's folder under `root`, with the good journal and `files`."""
    folder = root / SUMMARY["gameday_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(SUMMARY))
    (folder / "smd-phase3-timeout.json").write_text(json.dumps(journal or JOURNAL))
    for name, document in files.items():
        (folder / f"{name}.json").write_text(json.dumps(document))
    return folder


def review(root: Path, tmp_path: Path, html: bool = False) -> dict[str, Any]:
    """The report (Markdown, JSON, metrics; HTML when asked: its charts take a while) and
    the recommendations over `root`: none may raise."""
    page = tmp_path / "r.html" if html else None
    report = write_reports(
        [root], page, tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.prom"
    )
    recommend([root])
    return report


def test_the_good_journal_is_read_whole(tmp_path: Path) -> None:
    """The base of every case: read, the database phase found by the name the service
    gives it (Phase 3 is `load-catalogue` there, blocked, with no elapsed time), and a
    user's own probe's output neither checked nor read."""
    report = review(gameday(tmp_path / "journals"), tmp_path, html=True)
    assert (report["runs_read"], report["corrupt"]) == (1, [])
    (pressure,) = report["pressure"]
    assert pressure["database_phase"] == {
        "name": "connect-database",
        "status": "timeout",
        "elapsed_s": 3.002,
        "deadline_s": 3.0,
        "cause": "too_many_connections",
    }
    metrics = {m["metric"]: m for m in report["metrics"]}
    assert metrics["startup_sequence_time_s"]["observed"] == 3.002
    assert metrics["startup_sequence_time_s"]["met"] is True
    assert metrics["container_exit_code"]["observed"] == [1]  # this service's failure code
    assert metrics["container_exit_code"]["met"] is True
    assert report["categories"]["smd_phase3_timeout"] == 1
    assert "connect-database" in (tmp_path / "r.html").read_text()


# (what the document is, what its reason starts with, where it goes under the journals)
DOCUMENTS = {
    "journal": (JOURNAL, "malformed journal", f"{SUMMARY['gameday_id']}/bad.json"),
    "summary": (SUMMARY, "malformed game-day summary", f"{SUMMARY['gameday_id']}/summary.json"),
    "limit": (
        LIMIT,
        "malformed limit.json",
        "limit-20261101T220000Z-smd-phase3-timeout-flood_connections/limit.json",
    ),
}
CASES = [("journal", *c) for c in JOURNAL_CASES] + [("summary", *c) for c in SUMMARY_CASES]
CASES += [("limit", *c) for c in LIMIT_CASES]


@pytest.mark.parametrize(
    ("kind", "path", "value"), CASES, ids=[f"{k}:{p}={json.dumps(v)}" for k, p, v in CASES]
)
def test_a_wrong_typed_field_is_listed_and_the_rest_reported(
    tmp_path: Path, kind: str, path: str, value: Any
) -> None:
    root = tmp_path / "journals"
    gameday(root)
    document, problem, where = DOCUMENTS[kind]
    (root / where).parent.mkdir(exist_ok=True)
    (root / where).write_text(json.dumps(with_value(document, path, value)))
    report = review(root, tmp_path)
    assert report["runs_read"] == 1 and report["breaking_points"] == []
    (unreadable,) = report["corrupt"]
    assert unreadable["path"] == str(root / where)
    assert unreadable["reason"].startswith(f"{problem}: {path}"), unreadable["reason"]
    assert "Unreadable journals: 1" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"status": "completed", "run": [', "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not a journal: the document is not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (json.dumps({"status": "completed"}).encode(), "partial journal: no experiment, start"),
    ],
    ids=["truncated", "not-text", "empty", "a-list", "nested-too-deep", "partial"],
)
def test_a_journal_that_is_not_one_is_listed_with_its_reason(
    tmp_path: Path, text: bytes, reason: str
) -> None:
    root = tmp_path / "journals"
    folder = gameday(root)
    (folder / "bad.json").write_bytes(text)
    report = review(root, tmp_path)
    assert report["runs_read"] == 1
    (unreadable,) = report["corrupt"]
    assert unreadable["reason"].startswith(reason)


def test_reports_and_recommendations_from_the_command_line_never_stop_on_a_journal(
    testbed_home: Path, tmp_path: Path
) -> None:
    """Every crafted case at once, through `chaos gameday report` and `recommend`."""
    root = tmp_path / "journals"
    cases = {f"case-{i}": with_value(JOURNAL, p, v) for i, (p, v) in enumerate(JOURNAL_CASES)}
    folder = gameday(root, **cases)
    result = chaos(
        "gameday",
        "report",
        str(root),
        "-o",
        str(tmp_path / "r.html"),
        "--json",
        str(tmp_path / "r.json"),
        home=testbed_home,
    )
    assert result.returncode == 0, result.stderr
    assert f"Report of 1 journals ({len(JOURNAL_CASES)} unreadable)" in result.stdout
    recommended = chaos(
        "gameday", "recommend", str(folder), "-o", str(tmp_path / "fix.json"), home=testbed_home
    )
    assert "Traceback" not in recommended.stdout + recommended.stderr
    # the one readable journal reproduced on a full database: its answer is written
    assert recommended.returncode == 0, recommended.stdout + recommended.stderr
    written = json.loads((tmp_path / "fix.json").read_text())
    assert "database_max_connections" in written["configuration"]


def test_a_bad_journal_never_fails_a_later_game_days_report(
    testbed_home: Path, tmp_path: Path
) -> None:
    """A game day writes its end-of-day report over every game day under --journals:
    one bad journal of an earlier night is listed there, not a failure of this one (this
    game day is skipped at its preflight, an unreachable target, so nothing runs)."""
    root = tmp_path / "journals"
    gameday(root, bad=with_value(JOURNAL, "run[2].output.phases[1].elapsed_s", "3.0"))
    result = skipped_gameday(tmp_path, root, testbed_home)
    assert result.returncode == 3, result.stdout + result.stderr  # skipped, not a crash
    assert "Traceback" not in result.stdout + result.stderr
    (latest,) = [p for p in root.iterdir() if p.name != SUMMARY["gameday_id"]]
    page = (latest / "report.html").read_text()
    assert "The game day was skipped" in page
    assert "malformed journal: run[2].output.phases[1].elapsed_s" in page
    assert "**The game day was skipped**" in (latest / "report.md").read_text()


def test_the_report_renders_every_form_with_nothing_but_unreadable_journals(
    tmp_path: Path,
) -> None:
    root = tmp_path / "journals"
    root.mkdir()
    (root / "bad.json").write_text("{")
    report = build_report([root])
    assert report["runs_read"] == 0 and len(report["corrupt"]) == 1
    assert render_html(report).startswith("<!DOCTYPE html>")
    assert "0 of 0 runs" in render_markdown(report)
