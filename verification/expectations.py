"""Expectations: the failure chain an experiment declares, checked against its journal.

Declared in the experiment's `extensions` entry named `startup-chaos-kit`:

    {"name": "phase3_timeout", "step": 3,
     "observe": "observe-fresh-instance-startup.failed_phase.status", "expect": "== timeout"}

`observe` names an activity of the run (its last output) and a path into that output:
dotted keys, list indexes (`phases[2]`), slices (`phases[3:7]`), whose values then form a
list, and filters (`events[type=scaled_out][0].at`). `observe_seconds_between` takes
two such references to ISO timestamps and observes the seconds from the first to the
second; `observe_ratio` observes the first number over the second. `expect` is an
operator and a value (`== timeout`, `> 0.7`, `>= ${warning_lead_time_s}`), prefixed by
`all` or `any` for a list. Values are read as JSON when they parse (numbers, true,
null), else as text.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chaoslib import substitute

from chaoskit.kit.errors import KitError

__all__ = ["ExpectationError", "evaluate_expectations", "outputs_by_activity", "resolve_path"]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPECT = re.compile(r"^\s*(?:(all|any)\s+)?(==|!=|>=|<=|>|<)?\s*(.*?)\s*$")
_STEP = re.compile(r"([^.\[\]]+)|\[(-?\d*):(-?\d*)\]|\[(-?\d+)\]|\[([A-Za-z_][\w]*)=([^\]]*)\]")


class ExpectationError(KitError):
    """An expectation is malformed; the message names it and the field."""


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


def outputs_by_activity(journal: Mapping[str, Any]) -> dict[str, Any]:
    """Each activity's last output in the run, by activity name."""
    outputs: dict[str, Any] = {}
    for run in journal.get("run") or []:
        outputs[run["activity"]["name"]] = run.get("output")
    return outputs


def resolve_path(value: Any, path: str) -> Any:
    """Follow `path` into `value`; MISSING when a step does not exist."""
    for match in _STEP.finditer(path):
        key, start, stop, index, field, wanted = match.groups()
        if field is not None:
            if not isinstance(value, list):
                return MISSING
            value = [v for v in value if isinstance(v, dict) and str(v.get(field)) == wanted]
        elif key is not None:
            if isinstance(value, list):
                value = [v.get(key, MISSING) if isinstance(v, dict) else MISSING for v in value]
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                return MISSING
        elif index is not None:
            if not isinstance(value, list) or not -len(value) <= int(index) < len(value):
                return MISSING
            value = value[int(index)]
        else:
            if not isinstance(value, list):
                return MISSING
            value = value[int(start) if start else None : int(stop) if stop else None]
    return value


def _reference(outputs: Mapping[str, Any], reference: str) -> Any:
    activity, path = re.match(r"^([^.\[]+)(.*)$", reference).groups()
    if activity not in outputs:
        return MISSING
    return resolve_path(outputs[activity], path) if path else outputs[activity]


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compare(op: Callable[[Any, Any], bool], observed: Any, expected: Any) -> bool:
    try:
        return bool(op(observed, expected))
    except TypeError:
        return False


def _observe(expectation: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    if "observe_ratio" in expectation:
        numerator, denominator = (_reference(outputs, r) for r in expectation["observe_ratio"])
        try:
            return round(numerator / denominator, 3)
        except (TypeError, ZeroDivisionError):
            return MISSING
    if "observe_seconds_between" in expectation:
        start, end = (_reference(outputs, r) for r in expectation["observe_seconds_between"])
        try:
            return round(
                (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3
            )
        except (TypeError, ValueError):
            return MISSING
    return _reference(outputs, expectation["observe"])


def _check_shape(expectation: Any, position: int) -> None:
    if not isinstance(expectation, dict) or not expectation.get("name"):
        raise ExpectationError(f"expectations[{position}]: give an object with a `name`")
    name = expectation["name"]
    pairs = ("observe_seconds_between", "observe_ratio")
    ways = [isinstance(expectation.get("observe"), str)] + [
        isinstance(expectation.get(key), list) and len(expectation[key]) == 2 for key in pairs
    ]
    if sum(ways) != 1:
        raise ExpectationError(
            f'expectation {name!r}: give one of `observe` ("activity.path"), '
            "`observe_seconds_between` ([from, to]) or `observe_ratio` ([numerator, denominator])"
        )
    if not isinstance(expectation.get("expect"), str | int | float | bool):
        raise ExpectationError(f'expectation {name!r}: `expect` is missing, e.g. "> 0.7"')


def evaluate_expectations(
    expectations: list[dict[str, Any]],
    journal: Mapping[str, Any],
    configuration: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`{name, step, expected, observed, met}` for each expectation, in order."""
    outputs = outputs_by_activity(journal)
    results = []
    for position, expectation in enumerate(expectations):
        _check_shape(expectation, position)
        expected_text = str(substitute(str(expectation["expect"]), configuration or {}, {}))
        quantifier, symbol, value_text = _EXPECT.match(expected_text).groups()
        op = _OPERATORS[symbol or "=="]
        expected = _literal(value_text)
        observed = _observe(expectation, outputs)
        if observed is MISSING:
            met = False
        elif quantifier:
            values = observed if isinstance(observed, list) else [observed]
            checks = [_compare(op, v, expected) for v in values]
            met = bool(checks) and (all(checks) if quantifier == "all" else any(checks))
        else:
            met = _compare(op, observed, expected)
        results.append(
            {
                "name": expectation["name"],
                "step": expectation.get("step"),
                "expected": expected_text.strip(),
                "observed": None if observed is MISSING else observed,
                "met": met,
                **({"missing": True} if observed is MISSING else {}),
            }
        )
    return results
