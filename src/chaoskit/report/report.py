"""The journal report: HTML (one self-contained file), Markdown (for a pull request),
JSON (for machines) and Prometheus metrics (to alert on), from journals alone.

It opens with a banner a reviewer reads in ten seconds: how many runs were as the suite
expected, the regressions by name, then the target, the suite, the profiles layered,
the preflight and when.
"""

from __future__ import annotations

import gc
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from chaoskit.kit.documents import displayed
from chaoskit.kit.redaction import redact_secrets
from chaoskit.report.agent import toolkit_outcome
from chaoskit.report.analysis import (
    METRICS,
    analyse_run,
    before_and_after,
    categories_across,
    freshness,
    history,
    moment,
    trends,
)
from chaoskit.report.charts import (
    EXPECTED_COLOURS,
    limit_chart,
    phase_chart,
    timeline_chart,
    trend_chart,
    verdict_colours,
)
from chaoskit.report.journals import GameDay, read_journals
from chaoskit.report.metrics import write_metrics
from chaoskit.verification.verdict import PASSING, VERDICTS

__all__ = [
    "build_report",
    "junit_entries",
    "parse_since",
    "render_html",
    "render_markdown",
    "write_reports",
]

_CHARTED_RUNS = 12
_SWEEP_FIGURES = (
    "knob",
    "unit",
    "status",
    "breaking_point",
    "broken_at",
    "deterministic",
    "headroom",
    "message",
)
_DECIDED_BEFORE_EXPECTATIONS = ("aborted", "error", "not-recovered")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `12h`, `30m` (that long before now) or an ISO 8601 date or time (UTC when
    it has no offset); ValueError says what it takes."""
    now = now or datetime.now(UTC)
    found = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if found:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[found.group(2)]
        return now - timedelta(**{unit: int(found.group(1))})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is no time: give e.g. 7d, 12h or 2026-11-01") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _current(runs: list[dict[str, Any]], gamedays: list[str]) -> list[dict[str, Any]]:
    """The runs the summary shows: the latest game day's, else each experiment's last."""
    if gamedays:
        return [r for r in runs if r["gameday_id"] == gamedays[-1]]
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        latest[run["experiment"]] = run
    return list(latest.values())


def _ratio(metric: dict[str, Any]) -> float:
    observed, threshold = metric["observed"], metric["threshold"]
    if isinstance(observed, int | float) and isinstance(threshold, int | float) and threshold:
        return observed / threshold
    return observed if isinstance(observed, int | float) else 0.0


def _figure(name: str, value: Any) -> str:
    """A metric's value as the test plan writes it."""
    if value is None:
        return "-"
    if name.endswith("_utilisation"):
        return f"{value * 100:.0f} %"
    if name.endswith("_s"):
        return f"{value:.3g} s"
    if name == "container_exit_code":
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if name == "golden_path_availability":
        return f"{value['ready']} of {value['starts']} fresh starts ready"
    return displayed(value)


def _metrics(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test plan's metrics: for each, the run whose own figure comes closest to (or
    furthest past) its own threshold, printed with that threshold and marked only when
    its value meets it."""
    rows = []
    for name, plan, key, comparison in METRICS:
        seen = [
            (r, r["metrics"][name]) for r in current if r["metrics"][name]["observed"] is not None
        ]
        run, metric = max(
            seen, key=lambda s: (s[1]["met"] is True, _ratio(s[1])), default=(None, None)
        )
        threshold = metric and metric["threshold"]
        if comparison == "offline":
            threshold_text = "no fresh start ready"
        elif threshold is None:
            threshold_text = "-" if metric is None else f"not in the run's figures ({key})"
        else:
            threshold_text = f"{comparison} {_figure(name, threshold)} ({key})"
        rows.append(
            {
                "metric": name,
                "test_plan": f"{plan} (staging)" if plan.startswith(">") else plan,
                "observed": metric and metric["observed"],
                "observed_text": _figure(name, metric and metric["observed"]),
                "threshold": threshold,
                "threshold_text": threshold_text,
                "experiment": run and run["experiment"],
                "target": run and run["target"],
                "met": metric and metric["met"],
            }
        )
    return rows


def _as_the_toolkit_reports(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": run["experiment"],
        "verdict": run["verdict"],
        "toolkit": run["toolkit"],
        **run["as_the_toolkit_reports"],
    }


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
    # an outcome not as expected with every expectation met (a reproduction where the fix
    # was to hold): the verdict's reason says what happened
    why = first_unmet or (None if as_expected else run["reason"])
    return {
        "expected": expected,
        "as_expected": as_expected,
        "first_unmet": first_unmet,
        "why": why,
    }


def _breaking_point(sweep: dict[str, Any]) -> dict[str, Any]:
    figures = {key: sweep.get(key) for key in _SWEEP_FIGURES}
    return {"experiment": Path(sweep["experiment"]).stem, "path": sweep["path"], **figures}


def _banner(
    summary: list[dict[str, Any]],
    current: list[dict[str, Any]],
    gameday: GameDay | None,
    unreadable: int,
) -> dict[str, Any]:
    """What a reviewer reads first: runs as expected, the regressions by name, then the
    target, the suite, the profiles, the preflight and when."""
    starts = sorted(r["started"] for r in current if r["started"])
    targets = sorted({r["target"] for r in current if r["target"]})
    as_expected = sum(1 for r in summary if r["as_expected"])
    return {
        "runs": len(summary),
        "as_expected": as_expected,
        "all_as_expected": bool(summary) and as_expected == len(summary),
        "regressions": [
            {
                "experiment": r["experiment"],
                "verdict": r["verdict"],
                "expected": r["expected"],
                # a run decided before its expectations: its reason says why
                "why": r["reason"] if r["verdict"] in _DECIDED_BEFORE_EXPECTATIONS else r["why"],
            }
            for r in summary
            if not r["as_expected"]
        ],
        "gameday_id": gameday and gameday.gameday_id,
        "gameday_status": gameday and gameday.status,
        "suite_name": gameday and gameday.name,
        "suite": gameday and gameday.suite,
        "target": (gameday and gameday.target) or (", ".join(targets) or None),
        "profiles": gameday.profiles if gameday else [],
        "preflight": gameday and gameday.preflight,
        "started_at": (gameday and gameday.started_at) or (starts[0] if starts else None),
        "ended_at": (gameday and gameday.ended_at) or (starts[-1] if starts else None),
        "unreadable": unreadable,
    }


def _pressure_rows(
    current: list[dict[str, Any]], summary: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return [
        {
            "experiment": run["experiment"],
            "verdict": run["verdict"],
            "as_expected": row["as_expected"],
            "target": run["target"],
            **run["pressure"],
            "configuration": run["figures"],
        }
        for run, row in zip(current, summary, strict=True)
    ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while journals are parsed and analysed: they make
    no cycles, and its passes over every object parsed so far cost a third of the time
    over a thousand journals."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_report(
    sources: list[Path], now: datetime | None = None, since: datetime | None = None
) -> dict[str, Any]:
    """The report's content, from the journals under `sources` (files or folders);
    only the game days and runs started at or after `since`, when given."""
    with _collector_paused():
        found = read_journals(sources, since)
        runs = [analyse_run(record) for record in found.runs]
    records = {id(run): record for run, record in zip(runs, found.runs, strict=True)}
    gamedays = {g.gameday_id: g for g in found.gamedays}
    # a game day without journals (skipped at its preflight) is still the latest
    gameday_ids = sorted({r["gameday_id"] for r in runs if r["gameday_id"]} | set(gamedays))
    current = _current(runs, gameday_ids)
    for run in current:  # the toolkit's own words, for the runs shown
        record = records[id(run)]
        run["toolkit"] = toolkit_outcome(record.journal, run["experiment"], str(record.path))
    expected = {g.gameday_id: g.expected for g in found.gamedays}
    for run in current:  # the game day knew where it ran, where the journal does not say
        latest = gamedays.get(run["gameday_id"] or "")
        run["target"] = run["target"] or (latest and latest.target)
    totals = Counter(r["verdict"] for r in current)
    summary = [
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
    ]
    latest = gamedays.get(gameday_ids[-1]) if gameday_ids else None
    return redact_secrets(
        {
            "generated_at": (now or datetime.now(UTC)).isoformat(),
            "sources": [str(s) for s in sources],
            "since": since.isoformat() if since else None,
            "runs_read": len(runs),
            "gamedays": gameday_ids,
            "latest_gameday": gameday_ids[-1] if gameday_ids else None,
            "banner": _banner(summary, current, latest, len(found.corrupt)),
            "totals": {v: totals[v] for v in (*VERDICTS, "no verdict") if totals[v]},
            "summary": summary,
            "pressure": _pressure_rows(current, summary),
            "runs": [_as_the_toolkit_reports(r) for r in current],
            "failure_chains": [
                {
                    "experiment": r["experiment"],
                    "verdict": r["verdict"],
                    "as_expected": row["as_expected"],
                    "steps": r["chain"],
                }
                for r, row in zip(current, summary, strict=True)
                if r["chain"]
            ],
            "categories": categories_across(runs),
            "metrics": _metrics(current),
            "changed_verdicts": trends(runs, gameday_ids),
            "history": history(runs, gameday_ids, expected),
            "freshness": freshness(runs, found.gamedays, now),
            "before_after": before_and_after(runs, found.gamedays),
            "breaking_points": [_breaking_point(s) for s in found.sweeps],
            "corrupt": [{"path": str(c.path), "reason": c.reason} for c in found.corrupt],
            "_sweeps": found.sweeps,
            "_current": current,
        }
    )


def _charts(report: dict[str, Any]) -> dict[str, list[str]]:
    current = report["_current"][:_CHARTED_RUNS]
    started = [
        {
            "experiment": r["experiment"],
            "database": r["pressure"]["database_phase"],
            "report": next((s for s in r["startups"] if s.get("failed_phase")), r["startups"][-1]),
        }
        for r in current
        if r["startups"]
    ]
    timelines = [timeline_chart(r) for r in current if len(r["timeline"]) > 1]
    points = [
        {
            "experiment": row["experiment"],
            "day": day["gameday_id"],
            "as_expected": day["as_expected"],
        }
        for row in report["history"]
        for day in row["days"]
    ]
    return {
        "phases": [phase_chart(started)] if started else [],
        "timelines": timelines,
        "trend": [trend_chart(points)] if len(report["gamedays"]) > 1 and points else [],
        "limits": [limit_chart(s) for s in report["_sweeps"] if s["probes"]],
    }


_TEMPLATES = Environment(
    loader=PackageLoader("chaoskit.report", "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_TEMPLATES.filters["json_value"] = displayed


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page (templates/report.html.j2), charts inline."""
    template = _TEMPLATES.get_template("report.html.j2")
    return template.render(
        report=report,
        charts=_charts(report),
        colours=verdict_colours,
        expected_colours=EXPECTED_COLOURS,
        when=_when(report["banner"]),
    )


def _when(banner: dict[str, Any]) -> str:
    """When the runs took place, in UTC: `2026-12-04 22:32 to 22:35 UTC`."""
    if not banner["started_at"]:
        return "-"
    start = moment(banner["started_at"]).astimezone(UTC)
    end = moment(banner["ended_at"]).astimezone(UTC) if banner["ended_at"] else start
    until = f" to {end:%H:%M}" if end.date() == start.date() else f" to {end:%Y-%m-%d %H:%M}"
    if end == start:
        until = ""
    return f"{start:%Y-%m-%d %H:%M}{until} UTC"


def banner_lines(report: dict[str, Any]) -> list[str]:
    """The banner in Markdown: the headline, the regressions first, then the facts."""
    banner = report["banner"]
    judged = "the suite expected" if banner["gameday_id"] else "expected (a passing verdict)"
    mark = "✅" if banner["all_as_expected"] else "❌"
    lines = [
        f"### {mark} Startup Chaos Kit: {banner['as_expected']} of {banner['runs']} runs "
        f"as {judged}",
        "",
    ]
    if banner["gameday_status"] == "skipped":
        reasons = "; ".join((banner["preflight"] or {}).get("reasons") or [])
        lines += [f"**The game day was skipped**: the preflight failed ({reasons})", ""]
    for r in banner["regressions"]:
        want = f", expected **{r['expected']}**" if r["expected"] else ""
        lines.append(f"- **{r['experiment']}**: {r['verdict']}{want}: {r['why'] or '-'}")
    if banner["regressions"]:
        lines.append("")
    preflight = banner["preflight"]
    healthy = "-" if preflight is None else ("healthy" if preflight["healthy"] else "failed")
    suite = f"`{banner['suite_name']}` ({banner['suite']})" if banner["suite"] else "-"
    facts = [
        f"game day `{banner['gameday_id'] or '-'}`",
        f"target **{banner['target'] or '-'}**",
        f"suite {suite}",
        f"profiles {', '.join(f'`{p}`' for p in banner['profiles']) or 'none (defaults)'}",
        f"preflight {healthy}",
        _when(banner),
    ]
    if banner["unreadable"]:
        facts.append(f"{banner['unreadable']} unreadable journals")
    return [*lines, " · ".join(facts), ""]


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        *banner_lines(report),
        "| experiment | verdict | expected | duration (s) | time to recover (s) "
        "| why not as expected |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['experiment']} | **{r['verdict']}** {'✅' if r['as_expected'] else '❌'} | "
        f"{r['expected'] or '(passing)'} | {r['duration_s']} | "
        f"{r['time_to_recover_s'] if r['time_to_recover_s'] is not None else '-'} | "
        f"{r['why'] or '-'} |"
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
    if len(report["gamedays"]) > 1:
        trend = [
            f"{row['experiment']} "
            + " → ".join(
                d["verdict"] + ("" if d["as_expected"] is not False else " ❌")
                for d in row["days"][-7:]
            )
            for row in report["history"]
        ]
        lines += [
            "",
            f"Across the last {min(7, len(report['gamedays']))} game days: " + "; ".join(trend),
        ]
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


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def write_reports(
    sources: list[Path],
    html_path: Path | None = None,
    markdown_path: Path | None = None,
    json_path: Path | None = None,
    metrics_path: Path | None = None,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Build the report once and write each form asked for, whole or not at all; return
    its content."""
    report = build_report(sources, since=since)
    forms: list[tuple[Path | None, Callable[[dict[str, Any]], str]]] = [
        (html_path, render_html),
        (markdown_path, render_markdown),
        (json_path, lambda r: json.dumps(_public(r), indent=2)),
    ]
    for path, render in forms:
        if path is not None:
            _write(path, render(report))
    if metrics_path is not None:
        write_metrics(report, metrics_path)
    return _public(report)
