"""The journal report: HTML (one self-contained file), Markdown (for a pull request)
and JSON (for machines), from journals alone."""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit.kit.redaction import redact_secrets
from chaoskit.report.analysis import (
    analyse_run,
    categories_across,
    freshness,
    trends,
)
from chaoskit.report.charts import phase_chart, timeline_chart, trend_chart, verdict_colours
from chaoskit.report.journals import read_journals
from chaoskit.verification.verdict import VERDICTS

__all__ = ["build_report", "render_html", "render_markdown", "write_reports"]

_CHARTED_RUNS = 12


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


def build_report(sources: list[Path], now: datetime | None = None) -> dict[str, Any]:
    """The report's content, from the journals under `sources` (files or folders)."""
    found = read_journals(sources)
    runs = [analyse_run(record) for record in found.runs]
    gameday_ids = sorted({r["gameday_id"] for r in runs if r["gameday_id"]})
    current = _current(runs, gameday_ids)
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
                        "first_unmet",
                        "reason",
                        "journal",
                    )
                }
                for r in current
            ],
            "failure_chains": [
                {"experiment": r["experiment"], "verdict": r["verdict"], "steps": r["chain"]}
                for r in current
                if r["chain"]
            ],
            "categories": categories_across(runs),
            "metrics": _metrics(current),
            "changed_verdicts": trends(runs, gameday_ids),
            "freshness": freshness(runs, found.gamedays, now),
            "corrupt": [{"path": str(c.path), "reason": c.reason} for c in found.corrupt],
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
    }


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _verdict(verdict: str) -> str:
    colour = verdict_colours.get(verdict, "#95a5a6")
    return f'<span class="verdict" style="background:{colour}">{_e(verdict)}</span>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _mark(met: bool) -> str:
    return '<span class="met">&#10003;</span>' if met else '<span class="unmet">&#10007;</span>'


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#2c3e50}
table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f6f7}.verdict{color:#fff;border-radius:3px;padding:.1em .4em}
.met{color:#27ae60;font-weight:bold}.unmet{color:#c0392b;font-weight:bold}
.stale{color:#c0392b}.charts svg{max-width:100%;height:auto;margin:.5em 0}
.totals span{margin-right:1em}code{font-size:.9em}
"""


def render_html(report: dict[str, Any]) -> str:
    charts = _charts(report)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Startup Chaos Kit report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Startup Chaos Kit report</h1>",
        f"<p>Generated {_e(report['generated_at'])} from {report['runs_read']} journals"
        f" ({len(report['gamedays'])} game days); latest game day:"
        f" <code>{_e(report['latest_gameday'])}</code>.</p>",
        "<h2>Summary</h2><p class='totals'>"
        + "".join(f"<span>{_verdict(v)} {n}</span>" for v, n in report["totals"].items())
        + "</p>",
        _table(
            [
                "experiment",
                "verdict",
                "status",
                "duration (s)",
                "time to recover (s)",
                "first unmet expectation",
            ],
            [
                [
                    _e(r["experiment"]),
                    _verdict(r["verdict"]),
                    _e(r["status"]),
                    _e(r["duration_s"]),
                    _e(r["time_to_recover_s"]),
                    _e(r["first_unmet"]),
                ]
                for r in report["summary"]
            ],
        ),
    ]
    for chain in report["failure_chains"]:
        parts.append(
            f"<h2>Failure chain: {_e(chain['experiment'])} {_verdict(chain['verdict'])}</h2>"
        )
        parts.append(
            _table(
                ["step", "", "what", "evidence"],
                [
                    [
                        str(s["step"]),
                        _mark(s["observed"]) if s["checked"] else "-",
                        _e(s["title"]),
                        "<br>".join(
                            f"{_mark(e['met'])} {_e(e['name'])}: expected {_e(e['expected'])},"
                            f" observed {_e(e['observed'])}"
                            for e in s["evidence"]
                        )
                        or "not checked",
                    ]
                    for s in chain["steps"]
                ],
            )
        )
    parts += [
        "<h2>The test plan's expected metrics, and what was observed</h2>",
        _table(
            ["metric", "expected", "observed", ""],
            [
                [_e(m["metric"]), _e(m["test_plan"]), _e(m["observed"]), _mark(m["met"])]
                for m in report["metrics"]
            ],
        ),
        "<h2>Failure categories, across all runs</h2>",
        _table(["category", "runs"], [[_e(c), str(n)] for c, n in report["categories"].items()]),
        "<h2>Compared with the previous game day</h2>",
        _table(
            ["experiment", "before", "now"],
            [
                [_e(t["experiment"]), _verdict(t["before"]), _verdict(t["now"])]
                for t in report["changed_verdicts"]
            ],
        )
        if report["changed_verdicts"]
        else "<p>No verdict changed.</p>",
        "<h2>Freshness</h2>",
        _table(
            ["experiment", "expected", "last as expected", "days since"],
            [
                [
                    _e(f["experiment"]),
                    _e(f["expected"]),
                    _e(f["last_as_expected"]),
                    f"<span class='stale'>{_e(f['days_since'])} (stale)</span>"
                    if f["stale"]
                    else _e(f["days_since"]),
                ]
                for f in report["freshness"]
            ],
        ),
        "<h2>Startup phases against the timeout</h2><div class='charts' id='phase-charts'>",
        *charts["phases"],
        "</div><h2>Timelines</h2><div class='charts' id='timeline-charts'>",
        *charts["timelines"],
        "</div><h2>Across game days</h2><div class='charts' id='trend-charts'>",
        *charts["trend"],
        "</div>",
    ]
    if report["corrupt"]:
        parts += [
            "<h2>Journals that could not be read</h2>",
            _table(["file", "why"], [[_e(c["path"]), _e(c["reason"])] for c in report["corrupt"]]),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"### Startup Chaos Kit: game day `{report['latest_gameday'] or 'runs'}`",
        "",
        " · ".join(f"**{v}** {n}" for v, n in report["totals"].items()),
        "",
        "| experiment | verdict | duration (s) | time to recover (s) | first unmet expectation |",
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
    if report["corrupt"]:
        lines += ["", f"Unreadable journals: {len(report['corrupt'])} (see the HTML report)"]
    return "\n".join(lines) + "\n"


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
