"""The report's charts, drawn with matplotlib as SVG text to embed in the page."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = ["limit_chart", "phase_chart", "timeline_chart", "trend_chart", "verdict_colours"]

verdict_colours = {
    "reproduced": "#c0392b",
    "tolerated": "#27ae60",
    "deviated": "#e67e22",
    "inconclusive": "#95a5a6",
    "not-recovered": "#8e44ad",
    "aborted": "#7f8c8d",
    "error": "#d35400",
    "not-run": "#bdc3c7",
    "no verdict": "#bdc3c7",
}
_STATUS_COLOURS = {
    "succeeded": "#27ae60",
    "timeout": "#c0392b",
    "failed": "#d35400",
    "blocked": "#bdc3c7",
}
_STYLE = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG goes inline


def phase_chart(report: dict[str, Any], title: str) -> str:
    """Each phase's duration, coloured by status, against Phase 3's timeout."""
    phases = report["phases"]
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.4, 2.4))
        axes = figure.subplots()
        names = [f"{p['phase']} {p['name']}" for p in phases]
        axes.bar(
            names,
            [p["elapsed_s"] for p in phases],
            color=[_STATUS_COLOURS.get(p["status"], "#95a5a6") for p in phases],
        )
        timeout = report.get("initialization_timeout_s")
        if timeout:
            axes.axhline(timeout, color="#2c3e50", linestyle="--", linewidth=1)
            axes.annotate(f"Phase 3 timeout {timeout:g}s", (0, timeout), xytext=(0, 3),
                          textcoords="offset points", fontsize=8)  # fmt: skip
        axes.set_ylabel("seconds")
        axes.set_title(title, fontsize=9)
        axes.tick_params(axis="x", labelrotation=20)
        return _svg(figure)


def _seconds(at: str, start: datetime) -> float:
    return (datetime.fromisoformat(at) - start).total_seconds()


def _label_rows(spans: list[tuple[float, str]], width_s: float) -> list[int]:
    """A row for each label starting at its span, so that no two in a row overlap
    (a label's width estimated from its length at the chart's font size)."""
    ends: list[float] = []
    rows = []
    for begin, name in spans:
        row = next((i for i, end in enumerate(ends) if end < begin), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = begin + len(name) * width_s / 85  # about 85 characters of 6 pt an axis
        rows.append(row)
    return rows


def _fresh_instance_strip(axes: Any, run: dict[str, Any], start: datetime) -> None:
    """The fresh instance's phases under the pressure, on the same time axis, and its
    Phase 3 deadline."""
    for report in run["startups"]:
        for phase in report.get("phases") or []:
            if phase.get("started_at") and phase.get("elapsed_s") is not None:
                begin = _seconds(phase["started_at"], start)
                colour = _STATUS_COLOURS.get(phase.get("status"), "#95a5a6")
                axes.broken_barh([(begin, max(phase["elapsed_s"], 0.02))], (-0.16, 0.09),
                                 color=colour)  # fmt: skip
                if phase.get("phase") == 3 and report.get("initialization_timeout_s"):
                    deadline = begin + report["initialization_timeout_s"]
                    axes.axvline(deadline, color="#2c3e50", linestyle="--", linewidth=0.8)
                    axes.text(deadline, -0.2, " Phase 3 deadline", fontsize=6, va="top")
    if run["startups"]:
        axes.text(0, -0.12, "fresh instance ", fontsize=6, ha="right", va="center")


def timeline_chart(run: dict[str, Any]) -> str:
    """Connector and database utilisation and flood connections through one run, with
    the activities as shaded spans, the fresh instance's phases beneath on the same time
    axis, and the early warning, the connector's scale-out and Phase 3 giving up marked."""
    samples = run["timeline"]
    start = datetime.fromisoformat(samples[0]["at"])
    t = [_seconds(s["at"], start) for s in samples]
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.4, 3.0))
        axes = figure.subplots()
        for key, label, colour in (
            ("connector_utilisation", "connector utilisation", "#2980b9"),
            ("database_utilisation", "database connections / max", "#c0392b"),
        ):
            if any(key in s for s in samples):
                axes.plot(t, [s.get(key) for s in samples], label=label, color=colour)
        axes.set_ylim(-0.3, 1.05)
        axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        axes.set_ylabel("utilisation")
        axes.set_xlabel("seconds into the method")
        flood = [s.get("flood_connections") for s in samples]
        if any(flood):  # no empty axis where there was no flood
            floods = axes.twinx()
            floods.plot(t, flood, color="#7f8c8d", linestyle=":", label="flood connections")
            floods.set_ylabel("flood connections")
        spans = [
            (max(_seconds(a["start"], start), 0), _seconds(a["end"], start), a["name"])
            for a in run["activities"]
            if a["start"] and a["end"] and _seconds(a["end"], start) >= 0
        ]
        rows = _label_rows([(b, name) for b, _, name in spans], max(t[-1], 1e-3))
        for (begin, end, name), row in zip(spans, rows, strict=True):
            axes.axvspan(begin, end, ymin=0.25, alpha=0.08, color="#34495e")
            axes.text(begin, 1.0 - 0.08 * row, name, fontsize=6, va="top")
        _fresh_instance_strip(axes, run, start)
        moments = sorted((_seconds(m["at"], start), m["label"]) for m in run["markers"])
        for (at, label), row in zip(moments, _label_rows(moments, max(t[-1], 1e-3)), strict=True):
            axes.axvline(at, color="#8e44ad", linewidth=0.8)
            axes.text(at, 1.07 + 0.07 * row, label, fontsize=6, color="#8e44ad", va="bottom")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=7,
                    frameon=False)  # fmt: skip
        axes.set_title(run["experiment"], fontsize=9, pad=8 + 9 * len(moments))
        return _svg(figure)


def trend_chart(points: list[dict[str, Any]]) -> str:
    """Across game days: each experiment's verdict (a coloured mark) and Phase 3's
    duration (the mark's height)."""
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.4, 2.8))
        axes = figure.subplots()
        for name in sorted({p["experiment"] for p in points}):
            mine = [p for p in points if p["experiment"] == name and p["phase3_elapsed_s"]]
            if mine:
                axes.plot([p["day"] for p in mine], [p["phase3_elapsed_s"] for p in mine],
                          color="#bdc3c7", linewidth=0.8)  # fmt: skip
        axes.scatter(
            [p["day"] for p in points],
            [p["phase3_elapsed_s"] or 0 for p in points],
            c=[verdict_colours.get(p["verdict"], "#95a5a6") for p in points],
            s=18,
        )
        axes.set_ylabel("Phase 3 duration (s)")
        axes.set_title("Verdicts and Phase 3 duration, game day by game day", fontsize=9)
        axes.tick_params(axis="x", labelrotation=20)
        return _svg(figure)


def limit_chart(sweep: dict[str, Any]) -> str:
    """A breaking-point sweep: each probe's verdict against the knob's value (repeats
    stacked), the breaking point and today's value marked."""
    probes = sweep["probes"]
    verdicts = sorted({p["verdict"] for p in probes}, key=list(verdict_colours).index)
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.4, 2.2))
        axes = figure.subplots()
        seen: dict[float, int] = {}
        for probe in probes:
            seen[probe["value"]] = seen.get(probe["value"], 0) + 1
            row = verdicts.index(probe["verdict"]) + 0.12 * (seen[probe["value"]] - 1)
            colour = verdict_colours.get(probe["verdict"], "#95a5a6")
            axes.scatter(probe["value"], row, color=colour, s=22, zorder=3)
        axes.set_yticks(range(len(verdicts)), verdicts)
        axes.set_ylim(-0.5, len(verdicts) - 0.3)
        marks = [("breaking point", sweep.get("breaking_point"), "#2c3e50", "--")]
        headroom = sweep.get("headroom") or {}
        marks.append(("today", headroom.get("current_value"), "#2980b9", ":"))
        for label, at, colour, style in marks:
            if at is not None:
                axes.axvline(at, color=colour, linestyle=style, linewidth=1)
                axes.annotate(f"{label} {at:g}", (at, len(verdicts) - 0.4), xytext=(3, 0),
                              textcoords="offset points", fontsize=7, color=colour)  # fmt: skip
        axes.set_xlabel(f"{sweep['knob']} ({sweep.get('unit', '')})")
        name = Path(sweep["experiment"]).stem
        axes.set_title(f"{name}: breaking point of {sweep['knob']}", fontsize=9)
        return _svg(figure)
