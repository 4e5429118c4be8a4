"""The report's charts, drawn with matplotlib as SVG text to embed in the page.

Every chart is drawn at the page's full width, its text at 7 pt or more, every line
named in its legend, numbers without matplotlib's offset notation, and labels placed
in rows so that no two overlap.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from chaoskit.report.analysis import moment

__all__ = [
    "EXPECTED_COLOURS",
    "limit_chart",
    "phase_chart",
    "timeline_chart",
    "trend_chart",
    "verdict_colours",
]

# a verdict's badge says whether it was the one expected: an expected reproduction is
# no alarm, a tolerated run where a reproduction was expected is
EXPECTED_COLOURS = {True: "#1e8449", False: "#c0392b", None: "#566573"}
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
    "blocked": "#d5d8dc",
}
_DEADLINE = {"color": "#2c3e50", "linestyle": "--", "linewidth": 1.0}
_MARKER = "#8e44ad"
_WIDTH_IN = 10.5  # the page's width: the SVG is drawn at the size it is shown
_STYLE = {
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-6, 9),
    "svg.hashsalt": "chaoskit",
}
_CHAR_WIDTH_IN = 0.062  # a character of 7 pt, on average, for placing labels apart


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG goes inline


def _phase_row(report: dict[str, Any], database_phase: str) -> dict[str, Any]:
    """One startup's phases laid end to end: (start, width, status) of each phase that
    ran, the names of those blocked, and where the database phase began."""
    cursor, segments, blocked, database_start = 0.0, [], [], None
    for phase in report.get("phases") or []:
        if phase.get("status") == "blocked":
            blocked.append(phase.get("name") or str(phase.get("phase")))
            continue
        width = phase.get("elapsed_s") or 0.0
        if phase.get("name") == database_phase:
            database_start = cursor
        segments.append((cursor, width, phase.get("status")))
        cursor += width
    return {
        "segments": segments,
        "end": cursor,
        "blocked": blocked,
        "database_start": database_start,
    }


def _short(text: str, at_most: int = 40) -> str:
    """A label cut to `at_most` characters, so that the chart keeps the page's width."""
    return text if len(text) <= at_most else f"{text[: at_most - 1]}…"


def _phase_label(row: dict[str, Any], laid: dict[str, Any]) -> str:
    database = row["database"]
    if not row["report"].get("phases"):
        return "no phases reported"
    parts = []
    if database and database.get("elapsed_s") is not None:
        deadline = database.get("deadline_s")
        against = f" of {deadline:g} s" if deadline is not None else ""
        parts.append(
            f"{_short(database['name'], 24)} {database['elapsed_s']:.2f} s{against} "
            f"({database['status']})"
        )
    if laid["blocked"]:
        parts.append(f"{len(laid['blocked'])} blocked")
    return "; ".join(parts)


def phase_chart(rows: list[dict[str, Any]]) -> str:
    """One chart for every run's fresh instance: its phases end to end (coloured by
    status), the database phase's deadline, the phases a failure blocked drawn as
    blocked (hatched, after the failure: they took no time), and a label saying it.

    `rows`: `{"experiment", "report" (a startup report), "database" (the run's
    database phase: name, elapsed_s, deadline_s, status)}`, top to bottom."""
    laid = [_phase_row(r["report"], (r["database"] or {}).get("name", "")) for r in rows]
    deadlines = [
        lay["database_start"] + r["database"]["deadline_s"]
        for r, lay in zip(rows, laid, strict=True)
        if lay["database_start"] is not None and (r["database"] or {}).get("deadline_s")
    ]
    blocked_width = max([lay["end"] for lay in laid] + deadlines + [1e-3]) * 0.08
    extent = max([lay["end"] + blocked_width for lay in laid] + deadlines)
    labels = [
        (_short(r["experiment"]), _phase_label(r, lay)) for r, lay in zip(rows, laid, strict=True)
    ]
    # the labels on either side come out of the page's width: the text keeps its size
    beside_in = max(len(left) * 1.15 + len(right) for left, right in labels) * _CHAR_WIDTH_IN
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(max(_WIDTH_IN - beside_in, 4.0), 0.9 + 0.36 * len(rows)))
        axes = figure.subplots()
        for index, (row, lay) in enumerate(zip(rows, laid, strict=True)):
            y = len(rows) - 1 - index
            for start, width, status in lay["segments"]:
                axes.broken_barh(
                    [(start, max(width, extent * 0.002))],
                    (y - 0.3, 0.6),
                    color=_STATUS_COLOURS.get(status, "#95a5a6"),
                )
            if lay["blocked"]:
                axes.broken_barh(
                    [(lay["end"], blocked_width)],
                    (y - 0.3, 0.6),
                    facecolor="white",
                    edgecolor="#7f8c8d",
                    hatch="////",
                    linewidth=0.6,
                )
            deadline = (row["database"] or {}).get("deadline_s")
            if lay["database_start"] is not None and deadline:
                at = lay["database_start"] + deadline
                axes.plot([at, at], [y - 0.42, y + 0.42], **_DEADLINE)
        axes.set_yticks(range(len(rows)), [name for name, _ in reversed(labels)])
        axes.set_ylim(-0.7, len(rows) - 0.3)
        axes.set_xlim(0, extent * 1.04)
        axes.set_xlabel("seconds since the fresh instance started")
        # each row's database phase against its deadline, beside it on the right
        said = axes.twinx()
        said.set_ylim(axes.get_ylim())
        said.set_yticks(range(len(rows)), [text for _, text in reversed(labels)], fontsize=7)
        handles = [
            Patch(color=_STATUS_COLOURS[s], label=s) for s in ("succeeded", "timeout", "failed")
        ]
        handles += [
            Patch(
                facecolor="white", edgecolor="#7f8c8d", hatch="////", label="blocked (never ran)"
            ),
            Line2D([], [], label="database phase deadline", **_DEADLINE),
        ]
        axes.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=5,
            fontsize=7,
            frameon=False,
        )
        return _svg(figure)


def _seconds(at: str, start: datetime) -> float:
    return (moment(at) - start).total_seconds()


def _place_labels(
    spans: list[tuple[float, str]], width_s: float, axes_in: float
) -> list[tuple[float, int]]:
    """Where each label goes, (x, row): at its span's start, pulled left where it would
    run past the axis's end, in the first row where it overlaps no other (a label's width
    estimated from its length at 7 pt on an axis `axes_in` wide)."""
    ends: list[float] = []
    placed = []
    for begin, name in spans:
        width = (len(name) + 2) * _CHAR_WIDTH_IN * width_s / axes_in
        x = max(0.0, min(begin, width_s - width))
        row = next((i for i, end in enumerate(ends) if end < x), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = x + width
        placed.append((x, row))
    return placed


def _fresh_instance_strip(axes: Any, run: dict[str, Any], start: datetime) -> bool:
    """The fresh instance's phases under the pressure, on the same time axis, and its
    database phase's deadline; whether there was any to draw."""
    drawn = False
    database = run["database_phase"]
    deadline = run["pressure"]["database_phase"] and run["pressure"]["database_phase"].get(
        "deadline_s"
    )
    for report in run["startups"]:
        for phase in report.get("phases") or []:
            if phase.get("started_at") and phase.get("elapsed_s") is not None:
                begin = _seconds(phase["started_at"], start)
                colour = _STATUS_COLOURS.get(phase.get("status"), "#95a5a6")
                axes.broken_barh(
                    [(begin, max(phase["elapsed_s"], 0.02))], (-0.2, 0.1), color=colour
                )
                drawn = True
                if phase.get("name") == database and deadline:
                    axes.axvline(begin + deadline, **_DEADLINE)
    return drawn


def timeline_chart(run: dict[str, Any]) -> str:
    """Connector and database utilisation and flood connections through one run, with
    the activities as shaded spans, the fresh instance's phases beneath on the same time
    axis, and the early warning, the connector's scale-out and the database phase giving
    up marked; the legend names every line."""
    samples = run["timeline"]
    start = moment(samples[0]["at"])
    t = [_seconds(s["at"], start) for s in samples]
    width_s = max(t[-1], 1e-3)
    axes_in = _WIDTH_IN * 0.8
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(_WIDTH_IN, 3.6))
        axes = figure.subplots()
        handles = []
        for key, label, colour in (
            ("connector_utilisation", "connector utilisation", "#2980b9"),
            ("database_utilisation", "database connections / max_connections", "#c0392b"),
        ):
            if any(key in s for s in samples):
                (line,) = axes.plot(t, [s.get(key) for s in samples], label=label, color=colour)
                handles.append(line)
        axes.set_xlim(0, width_s)  # labels are placed within it
        axes.set_ylim(-0.3, 1.05)
        axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        axes.set_ylabel("utilisation")
        axes.set_xlabel("seconds into the method")
        flood = [s.get("flood_connections") for s in samples]
        if any(flood):  # no empty axis where there was no flood
            floods = axes.twinx()
            (line,) = floods.plot(
                t, flood, color="#7f8c8d", linestyle=":", label="flood connections (right axis)"
            )
            floods.set_ylabel("flood connections")
            handles.append(line)
        spans = [
            (max(_seconds(a["start"], start), 0), _seconds(a["end"], start), a["name"])
            for a in run["activities"]
            if a["start"] and a["end"] and _seconds(a["end"], start) >= 0
        ]
        placed = _place_labels([(b, name) for b, _, name in spans], width_s, axes_in)
        for (begin, end, name), (x, row) in zip(spans, placed, strict=True):
            axes.axvspan(begin, end, ymin=0.25, alpha=0.08, color="#34495e")
            axes.text(x, 1.0 - 0.085 * row, name, fontsize=7, va="top")
        if spans:
            handles.append(
                Patch(color="#34495e", alpha=0.15, label="activity (shaded while it ran)")
            )
        if _fresh_instance_strip(axes, run, start):
            handles.append(
                Patch(
                    color=_STATUS_COLOURS["succeeded"],
                    label="fresh instance's phases (bottom strip)",
                )
            )
            if run["pressure"]["database_phase"]:
                handles.append(Line2D([], [], label="database phase deadline", **_DEADLINE))
        at_seconds = [(_seconds(m["at"], start), m["label"]) for m in run["markers"]]
        moments = sorted(m for m in at_seconds if 0 <= m[0] <= width_s)
        lifted = _place_labels(moments, width_s, axes_in)
        for (at, label), (x, row) in zip(moments, lifted, strict=True):
            axes.axvline(at, color=_MARKER, linewidth=0.8)
            axes.text(x, 1.07 + 0.09 * row, label, fontsize=7, color=_MARKER, va="bottom")
        if moments:
            handles.append(
                Line2D(
                    [], [], color=_MARKER, linewidth=0.8, label="a moment, named above the chart"
                )
            )
        axes.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncol=3,
            fontsize=7,
            frameon=False,
        )
        rows_above = max((row for _, row in lifted), default=-1) + 1
        axes.set_title(run["experiment"], fontsize=9, pad=8 + 13 * rows_above)
        return _svg(figure)


def trend_chart(points: list[dict[str, Any]]) -> str:
    """Across game days: one row per experiment, one column per game day, each run a
    dot coloured by whether its verdict was the one its suite expected."""
    days = sorted({p["day"] for p in points})
    names = sorted({p["experiment"] for p in points}, reverse=True)
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(_WIDTH_IN, 0.9 + 0.3 * len(names)))
        axes = figure.subplots()
        for expected, label in (
            (True, "as expected"),
            (False, "not as expected"),
            (None, "no expectation"),
        ):
            mine = [p for p in points if p["as_expected"] is expected]
            if mine:
                x = [days.index(p["day"]) for p in mine]
                y = [names.index(p["experiment"]) for p in mine]
                axes.scatter(x, y, color=EXPECTED_COLOURS[expected], s=30, label=label, zorder=3)
        axes.set_yticks(range(len(names)), names)
        axes.set_ylim(-0.6, len(names) - 0.4)
        # at most a label every 1.1 inch: the game days' dates never run into each other
        step = max(1, -(-len(days) * 1.1 // (_WIDTH_IN * 0.7)))
        shown = range(0, len(days), int(step))
        axes.set_xticks(list(shown), [_day(days[i]) for i in shown])
        axes.set_xlim(-0.6, max(len(days) - 0.4, 1))
        axes.set_xlabel("game day (UTC)")
        axes.grid(axis="y", color="#eaecee", linewidth=0.6)
        axes.legend(
            loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7, frameon=False
        )
        return _svg(figure)


def _day(gameday_id: str) -> str:
    """`gd-20261204T223229Z-e0e2` as `12-04 22:32`."""
    stamp = gameday_id[3:18]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S").strftime("%m-%d %H:%M")
    except ValueError:
        return stamp


def limit_chart(sweep: dict[str, Any]) -> str:
    """A breaking-point sweep: each probe's verdict against the knob's value (repeats
    stacked), the breaking point and today's value marked."""
    probes = sweep["probes"]
    order = list(verdict_colours)
    verdicts = sorted(
        {p["verdict"] for p in probes}, key=lambda v: order.index(v) if v in order else len(order)
    )
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(_WIDTH_IN, 1.4 + 0.35 * len(verdicts)))
        axes = figure.subplots()
        seen: dict[float, int] = {}
        for probe in probes:
            seen[probe["value"]] = seen.get(probe["value"], 0) + 1
            row = verdicts.index(probe["verdict"]) + 0.12 * (seen[probe["value"]] - 1)
            colour = verdict_colours.get(probe["verdict"], "#95a5a6")
            axes.scatter(probe["value"], row, color=colour, s=22, zorder=3)
        axes.set_yticks(range(len(verdicts)), verdicts)
        axes.set_ylim(-0.5, len(verdicts) - 0.5)
        headroom = sweep.get("headroom") or {}
        marks = [
            ("breaking point", sweep.get("breaking_point"), "#2c3e50", "--"),
            ("today", headroom.get("current_value"), "#2980b9", ":"),
        ]
        handles = []
        for label, at, colour, style in marks:
            if at is not None:
                axes.axvline(at, color=colour, linestyle=style, linewidth=1)
                handles.append(
                    Line2D([], [], color=colour, linestyle=style, label=f"{label}: {at:g}")
                )
        if handles:
            axes.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.35),
                ncol=2,
                fontsize=7,
                frameon=False,
            )
        axes.set_xlabel(f"{sweep['knob']} ({sweep.get('unit') or ''})")
        name = Path(sweep["experiment"]).stem
        axes.set_title(f"{name}: breaking point of {sweep['knob']}", fontsize=9)
        return _svg(figure)
