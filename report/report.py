"""The journal report: HTML (one self-contained file), Markdown (for a pull request)
and JSON (for machines), from journals alone."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from chaoskit.kit.redaction import redact_secrets
from chaoskit.report.analysis import (
    analyse_run,
    before_and_after,
    categories_across,
    freshness,
    trends,
)
from chaoskit.report.charts import (
    limit_chart,
    phase_chart,
    timeline_chart,
    trend_chart,
    verdict_colours,
)
from chaoskit.report.journals import read_journals
from chaoskit.verification.verdict import PASSING, VERDICTS

__all__ = ["build_report", "junit_entries", "render_html", "render_markdown", "write_reports"]

_CHARTED_RUNS = 12
_SWEEP_FIGURES = ("knob", "unit", "status", "breaking_point", "broken_at", "deterministic",
                  "headroom", "message")  # fmt: skip


def _current(runs: list[dict[str, Any]], gamedays: list[str]) -> list[dict[str, Any]]:
    """The runs the summary shows: the latest game day's, else each experiment's last."""
    if gamedays:
        return [r for r in runs if r["gameday_id"] == gamedays[-1]]
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        latest[run["experiment"]] = run
    return list(latest.values())


def _metrics(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def peak(key: str) -> float | None:
        values = [r["peaks"][key] for r in current if r["peaks"][key] is not None]
        return max(values) if values else None

    phase3 = [r["phase3_elapsed_s"] for r in current if r["phase3_elapsed_s"] is not None]
    timeouts = [
        (p["elapsed_s"], s.get("initialization_timeout_s"))
        for r in current
        for s in r["startups"]
        for p in s["phases"]
        if p["phase"] == 3
    ]
    codes = sorted({c for r in current for c in r["exit_codes"]})
    started = [s for r in current for s in r["startups"]]
    ready = sum(1 for s in started if s["ready"])
    delays = [
        e for r in current for step in r["chain"] if step["step"] == 2 for e in step["evidence"]
    ]
    connector, database, connect = peak("connector"), peak("database"), peak("connect_s")
    return [
        {
            "metric": "vpc_connector_utilisation",
            "test_plan": "> 70 %",
            "observed": connector,
            "met": connector is not None and connector > 0.7,
        },
        {
            "metric": "cloud_sql_pool_utilisation",
            "test_plan": "> 80 %",
            "observed": database,
            "met": database is not None and database > 0.8,
        },
        {
            "metric": "connection_establishment_time_s",
            "test_plan": "> 35 s (staging)",
            "observed": connect,
            "met": any(e["met"] for e in delays),
        },
        {
            "metric": "startup_sequence_time_s",
            "test_plan": "> 75 s (staging)",
            "observed": max(phase3) if phase3 else None,
            "met": any(t is not None and elapsed >= t for elapsed, t in timeouts),
        },
        {"metric": "container_exit_code", "test_plan": "3", "observed": codes, "met": 3 in codes},
        {
            "metric": "golden_path_availability",
            "test_plan": "0 (offline)",
            "observed": f"{ready} of {len(started)} fresh starts ready",
            "met": bool(started) and not ready,
        },
    ]


def _as_the_toolkit_reports(run: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": run["experiment"], "verdict": run["verdict"],
            "toolkit": run["toolkit"], **run["as_the_toolkit_reports"]}  # fmt: skip


_DECIDED_BEFORE_EXPECTATIONS = ("aborted", "error", "not-recovered")


def _expectation(run: dict[str, Any], expected: str | None) -> dict[str, Any]:
    """The verdict the run's game day expected, and whether it came: a run outside any
    game day is as expected when its verdict passes, as `chaos run`'s exit code says.
    The first unmet expectation is shown only where it explains a surprise: a startup
    that held as expected leaves the failure's expectations unmet, and that is no news;
    an aborted run, an error or no recovery shows the verdict's reason instead."""
    verdict = run["verdict"]
    as_expected = verdict == expected if expected else verdict in PASSING
    first_unmet = None if as_expected else run["first_unmet"]
    # a run stopped or failed before its expectations could be judged: its reason says why
    if not as_expected and verdict in _DECIDED_BEFORE_EXPECTATIONS:
        first_unmet = f"({verdict}) {run['reason']}"
    return {"expected": expected, "as_expected": as_expected, "first_unmet": first_unmet}


def _breaking_point(sweep: dict[str, Any]) -> dict[str, Any]:
    figures = {key: sweep.get(key) for key in _SWEEP_FIGURES}
    return {"experiment": Path(sweep["experiment"]).stem, "path": sweep["path"], **figures}


def build_report(sources: list[Path], now: datetime | None = None) -> dict[str, Any]:
    """The report's content, from the journals under `sources` (files or folders)."""
    found = read_journals(sources)
    runs = [analyse_run(record) for record in found.runs]
    gameday_ids = sorted({r["gameday_id"] for r in runs if r["gameday_id"]})
    current = _current(runs, gameday_ids)
    expected = {g.gameday_id: g.expected for g in found.gamedays}
    totals = Counter(r["verdict"] for r in current)
    return redact_secrets(
        {
            "generated_at": (now or datetime.now(UTC)).isoformat(),
            "sources": [str(s) for s in sources],
            "runs_read": len(runs),
            "gamedays": gameday_ids,
            "latest_gameday": gameday_ids[-1] if gameday_ids else None,
            "totals": {v: totals[v] for v in (*VERDICTS, "no verdict") if totals[v]},
            "summary": [
                {
                    k: r[k]
                    for k in (
                        "experiment",
                        "verdict",
                        "status",
                        "duration_s",
                        "time_to_recover_s",
                        "reason",
                        "journal",
                        "toolkit",
                    )
                }
                | _expectation(r, expected.get(r["gameday_id"] or "", {}).get(r["experiment"]))
                for r in current
            ],
            "runs": [_as_the_toolkit_reports(r) for r in current],
            "failure_chains": [
                {"experiment": r["experiment"], "verdict": r["verdict"], "steps": r["chain"]}
                for r in current
                if r["chain"]
            ],
            "categories": categories_across(runs),
            "metrics": _metrics(current),
            "changed_verdicts": trends(runs, gameday_ids),
            "freshness": freshness(runs, found.gamedays, now),
            "before_after": before_and_after(runs, found.gamedays),
            "breaking_points": [_breaking_point(s) for s in found.sweeps],
            "corrupt": [{"path": str(c.path), "reason": c.reason} for c in found.corrupt],
            "_sweeps": found.sweeps,
            "_runs": runs,
            "_current": current,
        }
    )


def _charts(report: dict[str, Any]) -> dict[str, list[str]]:
    current = report["_current"][:_CHARTED_RUNS]
    phases = [
        phase_chart(r["startups"][-1], f"{r['experiment']}: startup phases")
        for r in current
        if r["startups"]
    ]
    timelines = [timeline_chart(r) for r in current if len(r["timeline"]) > 1]
    points = [
        {
            "experiment": r["experiment"],
            "day": r["gameday_id"][3:18],
            "verdict": r["verdict"],
            "phase3_elapsed_s": r["phase3_elapsed_s"],
        }
        for r in report["_runs"]
        if r["gameday_id"]
    ]
    return {
        "phases": phases,
        "timelines": timelines,
        "trend": [trend_chart(points)] if points else [],
        "limits": [limit_chart(s) for s in report["_sweeps"] if s["probes"]],
    }


_TEMPLATES = Environment(
    loader=PackageLoader("chaoskit.report", "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page (templates/report.html.j2), charts inline."""
    template = _TEMPLATES.get_template("report.html.j2")
    return template.render(report=report, charts=_charts(report), colours=verdict_colours)


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"### Startup Chaos Kit: game day `{report['latest_gameday'] or 'runs'}`",
        "",
        " · ".join(f"**{v}** {n}" for v, n in report["totals"].items()),
        "",
        "| experiment | verdict | duration (s) | time to recover (s) | why not as expected |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['experiment']} | **{r['verdict']}** | {r['duration_s']} | "
        f"{r['time_to_recover_s'] if r['time_to_recover_s'] is not None else '-'} | "
        f"{r['first_unmet'] or '-'} |"
        for r in report["summary"]
    ]
    for chain in report["failure_chains"]:
        steps = " → ".join(
            f"{s['step']} {'✅' if s['observed'] else ('❌' if s['checked'] else '·')}"
            for s in chain["steps"]
        )
        lines += ["", f"Failure chain, {chain['experiment']}: {steps}"]
    seen = [f"{c} ({n})" for c, n in report["categories"].items() if n]
    lines += ["", "Failure categories: " + (", ".join(seen) or "none")]
    if report["changed_verdicts"]:
        changes = [
            f"{t['experiment']} {t['before']} → {t['now']}" for t in report["changed_verdicts"]
        ]
        lines += ["", "Changed since the previous game day: " + ", ".join(changes)]
    stale = [f["experiment"] for f in report["freshness"] if f["stale"]]
    if stale:
        lines += ["", f"Not as expected for over 30 days (or never): {', '.join(stale)}"]
    if report["before_after"]:
        changes = [
            f"{r['experiment']} {r['before']['verdict']} → {r['after']['verdict']}"
            for r in report["before_after"]
        ]
        lines += ["", "With the remediation: " + ", ".join(changes)]
    for point in report["breaking_points"]:
        found = point["breaking_point"] if point["status"] == "found" else point["message"]
        lines += ["", f"Breaking point, {point['experiment']}: {point['knob']}={found}"]
    if report["corrupt"]:
        lines += ["", f"Unreadable journals: {len(report['corrupt'])} (see the HTML report)"]
    return "\n".join(lines) + "\n"


def junit_entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's runs as JUnit cases, failed where not as expected."""
    return [{**row, "name": row["experiment"]} for row in report["summary"]]


def _public(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if not k.startswith("_")}


def write_reports(
    sources: list[Path],
    html_path: Path | None = None,
    markdown_path: Path | None = None,
    json_path: Path | None = None,
) -> dict[str, Any]:
    """Build the report once and write each form asked for; return its content."""
    report = build_report(sources)
    for path, render in (
        (html_path, render_html),
        (markdown_path, render_markdown),
        (json_path, lambda r: json.dumps(_public(r), indent=2)),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(render(report))
            partial.replace(path)
    return _public(report)
