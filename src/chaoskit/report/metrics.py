"""The latest game day's verdicts as Prometheus metrics, in the text format that
node_exporter's textfile collector (and any Prometheus scrape of a file server) reads,
so that a regression pages someone rather than waiting to be read.

Written with prometheus_client, whole or not at all (a temporary file, then renamed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Enum, Gauge, write_to_textfile

from chaoskit.report.analysis import moment
from chaoskit.verification.verdict import VERDICTS

__all__ = ["STATES", "write_metrics"]

STATES = [*VERDICTS, "not-run", "no verdict"]
_RUN = ["experiment", "gameday", "target"]


def write_metrics(report: dict[str, Any], path: Path) -> None:
    """Write the report's latest runs (the latest game day's) and breaking points as
    metrics to `path`; raises OSError when it cannot be written."""
    registry = CollectorRegistry()
    verdict = Enum(
        "chaoskit_run_verdict",
        "The run's verdict (1 for the verdict it had)",
        _RUN,
        states=STATES,
        registry=registry,
    )
    as_expected = Gauge(
        "chaoskit_run_as_expected",
        "1 when the verdict is the one the suite expected, else 0",
        [*_RUN, "expected", "verdict"],
        registry=registry,
    )
    recovered = Gauge(
        "chaoskit_run_time_to_recover_seconds",
        "From the rollbacks to the steady state met again",
        _RUN,
        registry=registry,
    )
    margin = Gauge(
        "chaoskit_run_database_phase_margin_seconds",
        "The database phase's deadline less its elapsed time (0 or less: it gave up)",
        _RUN,
        registry=registry,
    )
    headroom = Gauge(
        "chaoskit_breaking_point_headroom",
        "How far today's value of the knob is from the breaking point, in the "
        "knob's unit (below 0: past it)",
        ["experiment", "knob", "unit"],
        registry=registry,
    )
    runs = Gauge(
        "chaoskit_gameday_runs",
        "The latest game day's runs, as expected or not",
        ["gameday", "as_expected"],
        registry=registry,
    )
    started = Gauge(
        "chaoskit_gameday_start_time_seconds",
        "When the latest game day started (Unix time): alert when it is old",
        ["gameday"],
        registry=registry,
    )
    banner = report["banner"]
    gameday = report["latest_gameday"] or ""
    for row, pressure in zip(report["summary"], report["pressure"], strict=True):
        labels = {
            "experiment": row["experiment"],
            "gameday": gameday,
            "target": pressure["target"] or "",
        }
        state = row["verdict"] if row["verdict"] in STATES else "no verdict"
        verdict.labels(**labels).state(state)
        as_expected.labels(
            **labels, expected=row["expected"] or "passing", verdict=row["verdict"]
        ).set(1 if row["as_expected"] else 0)
        if row["time_to_recover_s"] is not None:
            recovered.labels(**labels).set(row["time_to_recover_s"])
        database = pressure["database_phase"] or {}
        if database.get("elapsed_s") is not None and database.get("deadline_s") is not None:
            margin.labels(**labels).set(database["deadline_s"] - database["elapsed_s"])
    for point in report["breaking_points"]:
        room = (point["headroom"] or {}).get("room")
        if room is not None:
            headroom.labels(point["experiment"], point["knob"], point["unit"] or "").set(room)
    runs.labels(gameday, "true").set(banner["as_expected"])
    runs.labels(gameday, "false").set(banner["runs"] - banner["as_expected"])
    if banner["started_at"]:
        started.labels(gameday).set(moment(banner["started_at"]).timestamp())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
