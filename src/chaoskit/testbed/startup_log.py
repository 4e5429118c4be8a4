"""Reading a startup from a service's log lines, whichever way the service logs it.

A `StartupLog` turns lines (a local instance's output, both streams, or Cloud Logging's
entries on staging) into the same shape: the phases in order (`phase`, `name`,
`status`, `started_at`, `elapsed_s`, `cause`) and the lifespan's `startup_failed` when
it says.

- `kit-json`: the reference service's JSON lines (`{"event": "phase", ...}` and
  `{"event": "lifespan", "startup_failed": ...}`);
- `regex`: named patterns a user writes for their own service's lines (Python `re`,
  searched anywhere in the line): `started`, `succeeded`, `failed`, `timeout` (each with
  a `phase` group) and `startup_failed`. A line that matches two of them counts as the
  first of timeout, failed, succeeded, started. Groups read when present: `elapsed_s`,
  `elapsed_ms` or `elapsed` (a number with its unit: `3.2s`, `3200ms`, `1m5s`),
  `cause`, and `timestamp` (the line's moment: ISO 8601, epoch seconds or
  milliseconds, or a time of day). With `phases`, the service's phase names in order,
  the phases a failure kept from running are reported `blocked`, and each phase is
  numbered by its place in that list. A failed phase's cause is the kit's word for
  its `cause` group, or else for the closest line of that phase that names one
  (PostgreSQL's messages and SQLSTATEs, driver exceptions, the profile's own
  `causes`); what maps to no word is kept as `cause_text`;
- `none`: the service says nothing about its phases; only readiness, the exit code and
  the duration are known.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import CAUSES, cause_in_text

__all__ = ["FORMATS", "GROUPS", "LineRead", "StartupLog", "StartupLogError", "startup_log"]

FORMATS = ("kit-json", "regex", "none")
# a line that matches two patterns counts as the first of these
_MATCH_ORDER = ("timeout", "failed", "succeeded", "started")
_PATTERNS = (*_MATCH_ORDER, "startup_failed")
# the groups a pattern may have, and what each says
GROUPS = {
    "phase": "the phase's name",
    "elapsed_s": "its duration in seconds",
    "elapsed_ms": "its duration in milliseconds",
    "elapsed_us": "its duration in microseconds",
    "elapsed": "its duration with its unit inside the group (3.2s, 3200ms, 1m5s)",
    "cause": "why it failed, in the service's words or the kit's",
    "timestamp": "the line's moment (ISO 8601, epoch, or a time of day)",
}
_UNITS_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?$")
_EPOCH = re.compile(r"^\d{9,}(?:\.\d+)?$")
_CAUSE_TEXT_MAX = 300


class StartupLogError(KitError):
    """A startup-log description cannot be used; the message names the field."""


@dataclass
class LineRead:
    """One line of a startup, as the startup log read it: which pattern it matched (None:
    none) and what it read from it (`phase`, `elapsed_s`, `cause`, `timestamp`)."""

    number: int
    text: str
    matched: str | None = None
    read: dict[str, Any] = field(default_factory=dict)


@dataclass
class StartupLog:
    """How one service logs its startup (see the module's docstring)."""

    format: str = "kit-json"
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)
    phases: tuple[str, ...] = ()
    # a profile's own words for causes: (pattern, the kit's cause), tried first
    causes: tuple[tuple[re.Pattern[str], str], ...] = ()

    @property
    def reports_phases(self) -> bool:
        return self.format != "none"

    @property
    def reports_blocked_phases(self) -> bool:
        """Whether the phases a failure kept from running appear (as `blocked`)."""
        return self.format == "kit-json" or bool(self.phases)

    @property
    def reports_startup_failed(self) -> bool:
        """Whether the service says that its startup failed (the lifespan's breakdown)."""
        return self.format == "kit-json" or "startup_failed" in self.patterns

    def cannot_report(self) -> dict[str, str]:
        """What this log's patterns do not read of a failed startup, by the startup
        report's path, and why: an expectation on it is inconclusive whenever the run's
        lines do not say it otherwise."""
        if self.format == "none":
            return {"phases": "the format is none: the service says nothing of its phases"}
        if self.format == "kit-json":
            return {}
        ends = [self.patterns[s] for s in ("timeout", "failed") if s in self.patterns]
        groups = {g for pattern in self.patterns.values() for g in pattern.groupindex}
        missing = {}
        if not any("cause" in p.groupindex for p in ends):
            missing["failed_phase.cause"] = (
                "no `cause` group in timeout or failed: read from the failed phase's own "
                "lines when one names a cause the kit knows, else unreported"
            )
        if not groups & {"elapsed_s", "elapsed_ms", "elapsed_us", "elapsed", "timestamp"}:
            missing["failed_phase.elapsed_s"] = "no duration group (elapsed_s, elapsed_ms, ...)"
        if "timestamp" not in groups:
            missing["failure_at"] = "no `timestamp` group: when a phase gave up is not known"
        if not self.phases:
            missing["phases_after_failure"] = "no `phases` list: blocked phases are not known"
        if "startup_failed" not in self.patterns:
            missing["startup_failed"] = "no `startup_failed` pattern"
        return missing

    def read(
        self, lines: Iterable[Any], since: datetime | None = None
    ) -> tuple[list[dict[str, Any]], bool | None]:
        """The phases, in order, and `startup_failed` (None until the service says).

        `lines` are text lines, or (with `kit-json`) already-parsed JSON objects, as
        Cloud Logging's `jsonPayload` gives them; `since` is about when the instance
        started (a time of day in its lines is taken on that day; default: now)."""
        if self.format == "kit-json":
            return _read_kit_json(lines)
        if self.format == "regex":
            reading = _RegexReading(self, since or datetime.now(UTC))
            reading.scan(lines)
            return reading.result()
        return [], None

    def trace(self, lines: Iterable[Any], since: datetime | None = None) -> list[LineRead]:
        """Every line, with the pattern it matched and what was read from it: how a
        profile's patterns meet a service's real output (`chaos testbed check-service`)."""
        if self.format == "regex":
            reading = _RegexReading(self, since or datetime.now(UTC))
            reading.scan(lines)
            return reading.lines
        traced = []
        for number, line in enumerate(lines, 1):
            text = line if isinstance(line, str) else json.dumps(line)
            phases, startup_failed = (
                _read_kit_json([line]) if self.format == "kit-json" else ([], None)
            )
            if phases:
                traced.append(LineRead(number, text, phases[0].get("status"), phases[0]))
            elif startup_failed is not None:
                traced.append(
                    LineRead(number, text, "lifespan", {"startup_failed": startup_failed})
                )
            else:
                traced.append(LineRead(number, text))
        return traced


class _RegexReading:
    """One pass of a `regex` startup log over an instance's lines."""

    def __init__(self, log: StartupLog, since: datetime) -> None:
        self.log = log
        self.since = since
        self.lines: list[LineRead] = []
        self.phases: dict[str, dict[str, Any]] = {}
        self.spans: dict[str, list[int]] = {}  # a phase's first and last line index
        self.startup_failed: bool | None = None

    def scan(self, lines: Iterable[Any]) -> None:
        for line in lines:
            if not isinstance(line, str):
                continue
            self.lines.append(self._line(len(self.lines), line))

    def _line(self, index: int, text: str) -> LineRead:
        patterns = self.log.patterns
        read = LineRead(index + 1, text)
        if "startup_failed" in patterns and patterns["startup_failed"].search(text):
            self.startup_failed = True
            read.matched, read.read = "startup_failed", {"startup_failed": True}
        for status in _MATCH_ORDER:
            match = patterns[status].search(text) if status in patterns else None
            if match is not None:
                read.matched = status
                read.read = self._record(index, status, match.groupdict())
                break
        return read

    def _record(self, index: int, status: str, groups: dict[str, str | None]) -> dict[str, Any]:
        name = groups["phase"] or ""
        phase = self.phases.setdefault(
            name,
            {
                "phase": 0,
                "name": name,
                "status": "started",
                "started_at": None,
                "elapsed_s": None,
                "cause": None,
                "cause_text": None,
                "_ended_at": None,
            },
        )
        self.spans.setdefault(name, [index, index])[1] = index
        phase["status"] = status
        moment = _moment(groups.get("timestamp"), self.since)
        elapsed = _elapsed(groups)
        if status == "started":
            phase["started_at"] = moment or phase["started_at"]
        else:
            phase["_ended_at"] = moment
        if elapsed is not None:
            phase["elapsed_s"] = elapsed
        if groups.get("cause"):
            phase["cause_text"] = groups["cause"].strip()[:_CAUSE_TEXT_MAX]
            phase["cause"] = cause_in_text(phase["cause_text"], self.log.causes)
        read = {
            "phase": name,
            "elapsed_s": elapsed,
            "cause": phase["cause"],
            "cause_text": groups.get("cause"),
            "timestamp": moment.isoformat() if moment else None,
            "unread": _unread(groups, elapsed) or None,
        }
        return {key: value for key, value in read.items() if value is not None}

    def _number(self, name: str, order: int) -> int:
        return self.log.phases.index(name) + 1 if name in self.log.phases else order

    def _cause_nearby(self, name: str) -> tuple[str, str] | None:
        """The kit's cause named by the closest line of the phase `name` (from where the
        phase before it ended to where this one failed), and that line; None when none
        names one."""
        first, last = self.spans[name]
        earlier = [span[1] for other, span in self.spans.items() if span[1] < first]
        start = max(earlier) + 1 if earlier else 0
        for line in reversed(self.lines[start : last + 1]):
            cause = cause_in_text(line.text, self.log.causes)
            if cause is not None:
                return cause, line.text.strip()[:_CAUSE_TEXT_MAX]
        return None

    def result(self) -> tuple[list[dict[str, Any]], bool | None]:
        found = []
        for order, (name, phase) in enumerate(self.phases.items(), 1):
            ended = phase.pop("_ended_at")
            started = phase["started_at"]
            if phase["elapsed_s"] is None and started and ended:
                phase["elapsed_s"] = round((ended - started).total_seconds(), 6)
            if started is None and ended and phase["elapsed_s"] is not None:
                started = ended - timedelta(seconds=phase["elapsed_s"])
            phase["started_at"] = started.isoformat() if started else None
            nearby = phase["status"] in ("failed", "timeout") and phase["cause"] is None
            if nearby and (found_nearby := self._cause_nearby(name)):
                phase["cause"], phase["cause_text"] = found_nearby
            phase["phase"] = self._number(name, order)
            found.append(phase)
        if any(p["status"] in ("failed", "timeout") for p in found):
            found += [
                {
                    "phase": index,
                    "name": name,
                    "status": "blocked",
                    "started_at": None,
                    "elapsed_s": None,
                    "cause": None,
                    "cause_text": None,
                }
                for index, name in enumerate(self.log.phases, 1)
                if name not in self.phases
            ]
        found.sort(key=lambda p: p["phase"])
        return found, self.startup_failed


def _elapsed(groups: Mapping[str, str | None]) -> float | None:
    """Seconds, from whichever duration group the pattern has (None: none, or one that
    does not read as a duration)."""
    for group, unit in (("elapsed_s", "s"), ("elapsed_ms", "ms"), ("elapsed_us", "us")):
        if groups.get(group):
            value = _number(groups[group])
            return None if value is None else value * _UNITS_S[unit]
    if groups.get("elapsed"):
        parts = _DURATION_PART.findall(groups["elapsed"])
        return sum(float(n) * _UNITS_S[unit] for n, unit in parts) if parts else None
    return None


def _unread(groups: Mapping[str, str | None], elapsed: float | None) -> list[str]:
    """What a line's groups said that the kit could not read, to show in a trace."""
    if elapsed is None and groups.get("elapsed"):
        return [
            f"elapsed {groups['elapsed']!r} has no unit inside the group: write it in, e.g. "
            r"(?P<elapsed>\d+us), or use elapsed_s, elapsed_ms, elapsed_us"
        ]
    return []


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def _moment(text: str | None, since: datetime) -> datetime | None:
    """The moment a `timestamp` group names (UTC), None when it names none: ISO 8601
    (local time when it says no zone), epoch seconds or milliseconds, or a time of day
    (on the day of `since`, or the day before when that would be in the future)."""
    if not text:
        return None
    text = text.strip()
    if _EPOCH.match(text):
        value = float(text)
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if _TIME_OF_DAY.match(text):
        local = since.astimezone()
        text = text.replace(",", ".")
        try:
            clock = datetime.strptime(text, "%H:%M:%S.%f" if "." in text else "%H:%M:%S")
        except ValueError:
            return None
        moment = datetime.combine(local.date(), clock.time(), local.tzinfo)
        if moment - local > timedelta(hours=12):
            moment -= timedelta(days=1)
        return moment.astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)


def _read_kit_json(lines: Iterable[Any]) -> tuple[list[dict[str, Any]], bool | None]:
    phases, startup_failed = [], None
    for line in lines:
        record = line
        if isinstance(line, str):
            try:
                record = json.loads(line)
            except ValueError:
                continue
        if not isinstance(record, dict):
            continue
        if record.get("event") == "phase":
            phases.append({k: v for k, v in record.items() if k != "event"})
        elif record.get("event") == "lifespan":
            startup_failed = record.get("startup_failed")
    return phases, startup_failed


def _nearest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _pattern(where: str, name: str, text: Any) -> re.Pattern[str]:
    try:
        pattern = re.compile(text)
    except (re.error, TypeError) as error:
        raise StartupLogError(f"{where}.{name}: not a regular expression ({error})") from None
    for group in pattern.groupindex:
        if group not in GROUPS:
            hint = (
                " (for another unit, use elapsed with the unit inside the group, e.g. "
                r"(?P<elapsed>\d+ns))"
                if group.startswith("elapsed")
                else _nearest(group, GROUPS)
            )
            raise StartupLogError(
                f"{where}.{name}: the group `{group}` is not read{hint}: name groups "
                f"{', '.join(GROUPS)}"
            )
    if name != "startup_failed" and "phase" not in pattern.groupindex:
        raise StartupLogError(
            f"{where}.{name}: {text!r} has no named group `phase`: write (?P<phase>...) "
            "around the phase's name"
        )
    return pattern


def _causes(where: str, description: Any) -> tuple[tuple[re.Pattern[str], str], ...]:
    if description is None:
        return ()
    if not isinstance(description, Mapping):
        raise StartupLogError(
            f"{where}.causes: give an object of patterns to the kit's causes, e.g. "
            '{"pool exhausted": "pool_timeout"}'
        )
    causes = []
    for text, cause in description.items():
        if cause not in CAUSES:
            raise StartupLogError(
                f"{where}.causes[{text!r}]: {cause!r} is not one of the kit's causes"
                f"{_nearest(str(cause), CAUSES)}: use one of {', '.join(CAUSES)}"
            )
        try:
            causes.append((re.compile(text, re.IGNORECASE), cause))
        except re.error as error:
            raise StartupLogError(
                f"{where}.causes[{text!r}]: not a regular expression ({error})"
            ) from None
    return tuple(causes)


def startup_log(description: Mapping[str, Any] | None, where: str = "startup_log") -> StartupLog:
    """A StartupLog from its description (`{"format": ..., patterns}`); the reference
    service's `kit-json` when None. StartupLogError names a bad field."""
    if description is None:
        return StartupLog()
    if not isinstance(description, Mapping):
        raise StartupLogError(f"{where}: give an object with `format` ({', '.join(FORMATS)})")
    kind = description.get("format")
    if kind not in FORMATS:
        raise StartupLogError(f"{where}.format: {kind!r}: use one of {', '.join(FORMATS)}")
    known = {"format", *((*_PATTERNS, "phases", "causes") if kind == "regex" else ())}
    unknown = sorted(set(description) - known)
    if unknown:
        raise StartupLogError(
            f"{where}: unknown {', '.join(unknown)}{_nearest(unknown[0], known)} for format {kind}"
        )
    if kind != "regex":
        return StartupLog(kind)
    patterns = {
        name: _pattern(where, name, description[name])
        for name in _PATTERNS
        if description.get(name) is not None
    }
    if not ({"succeeded", "failed", "timeout"} & set(patterns)):
        raise StartupLogError(
            f"{where}: give at least one of succeeded, failed, timeout: patterns for the "
            "lines your service logs when a phase ends"
        )
    phases = description.get("phases", [])
    if not isinstance(phases, list) or not all(isinstance(p, str) and p for p in phases):
        raise StartupLogError(f"{where}.phases: give the phase names in order, as it logs them")
    return StartupLog(kind, patterns, tuple(phases), _causes(where, description.get("causes")))
