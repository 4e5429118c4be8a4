"""The kit's extension of an experiment, read and checked whole before anything runs.

    "extensions": [{"name": "startup-chaos-kit",
                    "chain": {"name": "phase3-timeout", "startup": "observe-startup"},
                    "expectations": [...], "startup": {...},
                    "recovery_timeout_s": 30, "sample_interval_s": 0.5, "guardrails": {...},
                    "stop_conditions": {...}, "knobs": {...}, "expect": "reproduced"}]

`expect` is the verdict the run passes on (`chaos run` exits 1 on any other); the
configuration's `expect` (`CHAOS_EXPECT`, a var-file) goes over it for one run.

`stop_conditions` are thresholds, and a team's own conditions (probes, SLO burn rates,
alert policies) joined by name, over the profile's for this experiment (see
`chaoskit.verification.stop_conditions`). `knobs` are the configuration keys a
breaking-point sweep may turn (see `chaoskit.verification.knobs`). `expectations` are
the experiment's own; a named `chain` adds the outcome expectations of a failure chain
(see `chaoskit.verification.chains`).
`startup` says what counts as the startup having succeeded (a chain brings its own).
An unknown key, a wrong-typed setting or a malformed expectation or knob is refused with
one line naming the experiment, the field and the fix: by `chaos validate` (the
control's `validate_control`) and again before a run.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.settings import KIT_KEYS, SETTABLE_KEYS
from chaoskit.verification.chains import ChainError, expand_chain
from chaoskit.verification.expectations import (
    ExpectationError,
    check_expectation,
    default_kind,
)
from chaoskit.verification.guardrails import check_limits
from chaoskit.verification.knobs import Knob, read_knobs
from chaoskit.verification.stop_conditions import check_stop_conditions
from chaoskit.verification.verdict import EXPECT_HINT, EXPECTABLE

__all__ = ["EXTENSION", "KitExtension", "read_extension"]

EXTENSION = "startup-chaos-kit"
_SETTINGS = {
    "recovery_timeout_s": (0.0, 5400.0),
    "sample_interval_s": (0.05, 60.0),
}
_KEYS = (
    "name",
    "chain",
    "expectations",
    "startup",
    "guardrails",
    "stop_conditions",
    "knobs",
    "expect",
    *_SETTINGS,
)


@dataclass
class KitExtension:
    """What the kit verifies a run against."""

    expectations: list[dict[str, Any]] = field(default_factory=list)
    startup: dict[str, Any] | None = None
    settings: dict[str, float] = field(default_factory=dict)
    guardrails: dict[str, Any] = field(default_factory=dict)
    stop_conditions: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Knob] = field(default_factory=dict)
    expect: str | None = None

    @property
    def declared(self) -> bool:
        return bool(self.expectations or self.startup)


def _entry(experiment: Mapping[str, Any]) -> dict[str, Any]:
    for entry in experiment.get("extensions") or []:
        if isinstance(entry, dict) and entry.get("name") == EXTENSION:
            return entry
    return {}


def _method_activities(experiment: Mapping[str, Any]) -> set[str]:
    return {
        activity["name"]
        for activity in experiment.get("method") or []
        if isinstance(activity, dict) and isinstance(activity.get("name"), str)
    }


class _Keys(set):
    """Keys an expectation may name: those the experiment declares, those the kit knows
    (`chaoskit.kit.settings`), and any `gcp_<name>`."""

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or (isinstance(key, str) and key.startswith("gcp_"))


def read_extension(experiment: Mapping[str, Any]) -> KitExtension:
    """The experiment's extension, checked; ExpectationError names the first fault."""
    title = experiment.get("title") or "untitled"
    where = f"experiment {shown(title, 120)}: extensions.{EXTENSION}"
    entry = _entry(experiment)

    def refuse(key: str, message: str) -> None:
        raise ExpectationError(f"{where}.{key}: {message}")

    for key in entry:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            refuse(key, f"unknown key{hint}; known: {', '.join(sorted(_KEYS[1:]))}")
    extension = KitExtension()
    for key, (low, high) in _SETTINGS.items():
        if key in entry:
            value = entry[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                refuse(key, f"{shown(value)}: give seconds, from {low:g} to {high:g}")
            extension.settings[key] = float(value)
    if "expect" in entry and entry["expect"] not in EXPECTABLE:
        refuse("expect", f"{entry['expect']!r}: {EXPECT_HINT}")
    extension.expect = entry.get("expect")
    try:
        # the same checks as the run's, so that `chaos validate` refuses what it would
        extension.guardrails = check_limits(entry.get("guardrails"), f"{where}.guardrails")
        extension.stop_conditions = check_stop_conditions(
            entry.get("stop_conditions") or {}, f"{where}.stop_conditions"
        )
    except KitError as error:
        raise ExpectationError(str(error)) from None
    declared = set(experiment.get("configuration") or {})
    extension.knobs = read_knobs(
        entry.get("knobs") or {}, declared | set(SETTABLE_KEYS), f"{where}.knobs"
    )

    activities = _method_activities(experiment)
    keys = _Keys(declared | KIT_KEYS)
    expectations = entry.get("expectations", [])
    if not isinstance(expectations, list):
        refuse("expectations", "give a list of expectations")
    for position, expectation in enumerate(expectations):
        check_expectation(expectation, f"{where}.expectations[{position}]", activities, keys)
    chained: list[dict[str, Any]] = []
    startup = entry.get("startup")
    if "chain" in entry:
        try:
            chained, chain_startup = expand_chain(entry["chain"])
        except ChainError as error:
            refuse("chain", str(error))
        for expectation in chained:
            check_expectation(expectation, f"{where}.chain", activities, keys)
        startup = startup if startup is not None else chain_startup
    if startup is not None:
        check_expectation(startup, f"{where}.startup", activities, keys, named=False)
    names = [e["name"] for e in [*expectations, *chained]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        refuse("expectations", f"{', '.join(repeated)} declared twice: give each its own name")
    if (expectations or chained) and startup is None:
        refuse(
            "startup",
            'say what counts as the startup having succeeded, e.g. {"observe": '
            '"observe-fresh-instance-startup.ready", "expect": "== true"}, or name a chain',
        )
    extension.expectations = [
        {**e, "kind": e.get("kind") or default_kind(e.get("step"))}
        for e in [*expectations, *chained]
    ]
    extension.startup = startup
    return extension
