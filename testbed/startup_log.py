"""Reading a startup from a service's log lines, whichever way the service logs it.

A `StartupLog` turns lines (a local instance's output, or Cloud Logging's entries on
staging) into the same shape: the phases in order (`phase`, `name`, `status`,
`started_at`, `elapsed_s`, `cause`) and the lifespan's `startup_failed` when it says.

- `kit-json`: the reference service's JSON lines (`{"event": "phase", ...}` and
  `{"event": "lifespan", "startup_failed": ...}`);
- `regex`: named patterns a user writes for their own service's lines: `started`,
  `succeeded`, `failed`, `timeout` (each with a `phase` group, and optionally
  `elapsed_s` and `cause`) and `startup_failed`; with `phases`, the service's phase
  names in order, the phases a failure kept from running are reported `blocked`, and
  each phase is numbered by its place in that list;
- `none`: the service says nothing about its phases; only readiness, the exit code and
  the duration are known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoskit.kit.errors import KitError

__all__ = ["FORMATS", "StartupLog", "StartupLogError", "startup_log"]

FORMATS = ("kit-json", "regex", "none")
_STATUSES = ("started", "succeeded", "failed", "timeout")
_PATTERNS = (*_STATUSES, "startup_failed")


class StartupLogError(KitError):
    """A startup-log description cannot be used; the message names the field."""


@dataclass
class StartupLog:
    """How one service logs its startup (see the module's docstring)."""

    format: str = "kit-json"
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)
    phases: tuple[str, ...] = ()

    @property
    def reports_phases(self) -> bool:
        return self.format != "none"

    @property
    def reports_blocked_phases(self) -> bool:
        """Whether the phases a failure kept from running appear (as `blocked`)."""
        return self.format == "kit-json" or bool(self.phases)

    def read(self, lines: Iterable[Any]) -> tuple[list[dict[str, Any]], bool | None]:
        """The phases, in order, and `startup_failed` (None until the service says).

        `lines` are text lines, or (with `kit-json`) already-parsed JSON objects, as
        Cloud Logging's `jsonPayload` gives them."""
        if self.format == "kit-json":
            return _read_kit_json(lines)
        if self.format == "regex":
            return self._read_regex(lines)
        return [], None

    def _read_regex(self, lines: Iterable[Any]) -> tuple[list[dict[str, Any]], bool | None]:
        phases: dict[str, dict[str, Any]] = {}

        def number(name: str) -> int:
            return self.phases.index(name) + 1 if name in self.phases else len(phases) + 1

        startup_failed = None
        for line in lines:
            if not isinstance(line, str):
                continue
            if "startup_failed" in self.patterns and self.patterns["startup_failed"].search(line):
                startup_failed = True
            for status in _STATUSES:
                pattern = self.patterns.get(status)
                match = pattern.search(line) if pattern else None
                if match is None:
                    continue
                groups = match.groupdict()
                name = groups["phase"]
                phase = phases.setdefault(
                    name,
                    {"phase": number(name), "name": name, "status": "started",
                     "started_at": None, "elapsed_s": None, "cause": None},
                )  # fmt: skip
                phase["status"] = status
                if groups.get("elapsed_s"):
                    phase["elapsed_s"] = float(groups["elapsed_s"])
                if groups.get("cause"):
                    phase["cause"] = groups["cause"]
                break
        found = sorted(phases.values(), key=lambda p: p["phase"])
        if any(p["status"] in ("failed", "timeout") for p in found):
            found += [
                {"phase": index, "name": name, "status": "blocked", "started_at": None,
                 "elapsed_s": None, "cause": None}
                for index, name in enumerate(self.phases, 1)
                if name not in phases
            ]  # fmt: skip
            found.sort(key=lambda p: p["phase"])
        return found, startup_failed


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
    unknown = sorted(
        set(description) - {"format", *((*_PATTERNS, "phases") if kind == "regex" else ())}
    )
    if unknown:
        raise StartupLogError(f"{where}: unknown {', '.join(unknown)} for format {kind}")
    if kind != "regex":
        return StartupLog(kind)
    patterns: dict[str, re.Pattern[str]] = {}
    for name in _PATTERNS:
        text = description.get(name)
        if text is None:
            continue
        try:
            pattern = re.compile(text)
        except (re.error, TypeError) as error:
            raise StartupLogError(f"{where}.{name}: not a regular expression ({error})") from None
        if name != "startup_failed" and "phase" not in pattern.groupindex:
            raise StartupLogError(
                f"{where}.{name}: {text!r} has no named group `phase`: write (?P<phase>...) "
                "around the phase's name"
            )
        patterns[name] = pattern
    if not ({"succeeded", "failed", "timeout"} & set(patterns)):
        raise StartupLogError(
            f"{where}: give at least one of succeeded, failed, timeout: patterns for the "
            "lines your service logs when a phase ends"
        )
    phases = description.get("phases", [])
    if not isinstance(phases, list) or not all(isinstance(p, str) and p for p in phases):
        raise StartupLogError(f"{where}.phases: give the phase names in order, as it logs them")
    return StartupLog(kind, patterns, tuple(phases))
