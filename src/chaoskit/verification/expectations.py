"""Expectations: what an experiment declares it will observe, checked against its journal.

Each is declared in the experiment's `extensions` entry named `startup-chaos-kit`:

    {"name": "phase3_timeout", "step": 3,
     "observe": "observe-fresh-instance-startup.failed_phase.status", "expect": "== timeout"}

`observe` names an activity of the method (its last output) and a path into that output:
dotted keys, list indexes (`phases[2]`), slices (`phases[3:7]`), whose values then form a
list, and filters (`events[type=scaled_out][0].at`). `observe_seconds_between` takes
two such references to ISO timestamps and observes the seconds from the first to the
second; `observe_ratio` observes the first number over the second. `expect` is an
operator and a value (`== timeout`, `> 0.7`, `== ${pool_size} + ${max_overflow}`),
prefixed by `all` or `any` for a list. The value may name configuration keys (`${key}`)
and compute with them (`+ - * /`, parentheses); otherwise it is read as JSON when it
parses (numbers, true, null), else as text.

`step` (1-6) places it in the incident's failure chain; `kind` says whether it is
evidence that the fault was applied as declared (`pressure`, steps 1-2 by default) or
what the startup did (`outcome`, steps 3-6 by default).

Every expectation is checked before anything runs (`check_expectation`): a malformed
one is refused with one line naming it, the field and the fix.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from chaoskit.kit.errors import KitError, shown

__all__ = [
    "KINDS",
    "MISSING",
    "ExpectationError",
    "check_expectation",
    "evaluate_expectation",
    "outputs_by_activity",
    "resolve_path",
]

KINDS = ("pressure", "outcome")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_EXPECT = re.compile(r"^\s*(?:(all|any)\s+)?(==|!=|>=|<=|>|<)\s*(.*?)\s*$")
_STEP = re.compile(
    r"\.?(?:(?P<key>[^.\[\]]+)|\[(?P<start>-?\d*):(?P<stop>-?\d*)\]|\[(?P<index>-?\d+)\]"
    r"|\[(?P<field>[A-Za-z_]\w*)=(?P<wanted>[^\]]*)\])"
)
_REFERENCE = re.compile(r"^([^.\[]+)(.*)$")
_KEY = re.compile(r"\$\{([^}]*)\}")
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_OBSERVERS = ("observe", "observe_seconds_between", "observe_ratio")


class ExpectationError(KitError):
    """An expectation is malformed; the message names it, the field and the fix."""


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


def _steps(path: str) -> list[re.Match[str]]:
    """The steps of `path`, every character accounted for; ValueError otherwise."""
    steps, position = [], 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read {path[position:]!r}")
        steps.append(match)
        position = match.end()
    return steps


def resolve_path(value: Any, path: str) -> Any:
    """Follow `path` into `value`; MISSING when a step does not exist."""
    for step in _steps(path):
        key, start, stop, index, field = step.group("key", "start", "stop", "index", "field")
        if field is not None:
            if not isinstance(value, list):
                return MISSING
            wanted = step.group("wanted")
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


def outputs_by_activity(journal: Mapping[str, Any]) -> dict[str, Any]:
    """Each activity's last output in the run, by activity name."""
    outputs: dict[str, Any] = {}
    for run in journal.get("run") or []:
        outputs[run["activity"]["name"]] = run.get("output")
    return outputs


def _references(expectation: Mapping[str, Any]) -> list[str]:
    if "observe" in expectation:
        return [expectation["observe"]]
    key = next(k for k in _OBSERVERS[1:] if k in expectation)
    return list(expectation[key])


def _reference(outputs: Mapping[str, Any], reference: str) -> Any:
    activity, path = _REFERENCE.match(reference).groups()
    if activity not in outputs:
        return MISSING
    return resolve_path(outputs[activity], path) if path else outputs[activity]


def _unobservable(expectation: Mapping[str, Any], outputs: Mapping[str, Any]) -> str | None:
    """Why nothing can be said of this expectation, if so: the startup it reads was
    not observed, or its service's log does not report what it reads."""
    for reference in _references(expectation):
        activity, path = _REFERENCE.match(reference).groups()
        output = outputs.get(activity)
        if not isinstance(output, Mapping):
            continue
        if output.get("observed") is False:
            return str(output.get("reason") or f"{activity} was not observed")
        path = path.lstrip(".")
        for missing in output.get("unreported") or []:
            if path == missing or path.startswith((f"{missing}.", f"{missing}[")):
                return _not_reported(output, missing)
    return None


def _not_reported(output: Mapping[str, Any], missing: str) -> str:
    failed = output.get("failed_phase")
    words = failed.get("cause_text") if isinstance(failed, Mapping) else None
    if missing == "failed_phase.cause" and words:
        return (
            f"the service's cause {words[:120]!r} is none the kit knows: map it to one in "
            "service.startup_log.causes"
        )
    return f"the service's startup log does not report {missing}"


def _substitute(text: str, configuration: Mapping[str, Any]) -> str:
    return _KEY.sub(lambda m: str(configuration[m.group(1)]), text)


def _arithmetic(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _arithmetic(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    raise ValueError("not arithmetic")


def _value(text: str) -> Any:
    """The expected value: arithmetic of numbers, else JSON, else the text itself."""
    try:
        return _arithmetic(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def default_kind(step: int | None) -> str:
    """Steps 1-2 of the failure chain are evidence of pressure; 3-6 are the outcome."""
    return "pressure" if step in (1, 2) else "outcome"


def check_expectation(
    expectation: Any,
    where: str,
    activities: Collection[str],
    configuration_keys: Collection[str],
    named: bool = True,
) -> None:
    """Refuse a malformed expectation in one line naming `where`, the field and the fix:
    a missing name, no or several observations, a path that does not parse or names an
    activity the method does not have, an unknown operator, an unknown `${key}`, a step
    outside 1-6 or an unknown kind."""

    def refuse(field: str, message: str) -> None:
        raise ExpectationError(f"{where}.{field}: {message}")

    if not isinstance(expectation, dict):
        raise ExpectationError(f"{where}: give an object with `observe` and `expect`")
    if named and not (isinstance(expectation.get("name"), str) and expectation["name"]):
        refuse("name", "give every expectation a name, e.g. phase3_timeout")
    ways = [key for key in _OBSERVERS if key in expectation]
    if len(ways) != 1:
        refuse(
            "observe",
            'give one of `observe` ("activity.path"), `observe_seconds_between` '
            "([from, to]) or `observe_ratio` ([numerator, denominator])",
        )
    way = ways[0]
    references = expectation[way]
    if way == "observe":
        references = [references]
    if not (
        isinstance(references, list)
        and len(references) == (1 if way == "observe" else 2)
        and all(isinstance(r, str) and r for r in references)
    ):
        refuse(way, "give an activity name and a path, e.g. observe-startup.failed_phase.status")
    for reference in references:
        activity, path = (
            _REFERENCE.match(reference).groups() if reference[0] not in ".[" else ("", reference)
        )
        if activity not in activities:
            known = ", ".join(sorted(activities)) or "none"
            refuse(
                way,
                f"{shown(reference)}: the method has no activity {shown(activity)} "
                f"(it has {known})",
            )
        try:
            _steps(path)
        except ValueError as error:
            refuse(
                way,
                f"{shown(reference)}: malformed path, {error}: use keys, [2], [3:7] or [type=x]",
            )
    expect = expectation.get("expect")
    if not isinstance(expect, str | int | float | bool) or expect == "":
        refuse("expect", 'give an operator and a value, e.g. "> 0.7" or "== timeout"')
    text = str(expect)
    if not isinstance(expect, bool | int | float) and not _EXPECT.match(text):
        refuse(
            "expect",
            f"{shown(text)}: start with one of {', '.join(_OPERATORS)} (after `all` or `any` "
            'for a list), e.g. "== timeout"',
        )
    for key in _KEY.findall(text):
        if key not in configuration_keys:
            refuse("expect", f"${{{key}}} is not a configuration key: declare it, or fix the name")
    step = expectation.get("step")
    if step is not None and (isinstance(step, bool) or step not in range(1, 7)):
        refuse("step", f"{shown(step)}: give the failure chain's step, 1 to 6")
    kind = expectation.get("kind")
    if kind is not None and kind not in KINDS:
        refuse("kind", f"{shown(kind)}: use pressure (the fault was applied) or outcome")


def evaluate_expectation(
    expectation: Mapping[str, Any],
    outputs: Mapping[str, Any],
    configuration: Mapping[str, Any],
) -> dict[str, Any]:
    """`{name, step, kind, expected, observed, met}` (and `missing` when the observed
    value is not in the journal, `inconclusive` with the reason when nothing can be said:
    the startup was not observed, or its log does not report the value) for one
    well-formed expectation."""
    expect = expectation["expect"]
    if isinstance(expect, bool | int | float):
        expect = f"== {json.dumps(expect)}"
    expected_text = _substitute(str(expect), configuration)
    quantifier, symbol, value_text = _EXPECT.match(expected_text).groups()
    op, expected = _OPERATORS[symbol], _value(value_text)
    observed = _observe(expectation, outputs)
    if observed is MISSING:
        met = False
    elif quantifier:
        values = observed if isinstance(observed, list) else [observed]
        checks = [_compare(op, v, expected) for v in values]
        met = bool(checks) and (all(checks) if quantifier == "all" else any(checks))
    else:
        met = _compare(op, observed, expected)
    shown = f"{quantifier + ' ' if quantifier else ''}{symbol} {json.dumps(expected)}"
    unobservable = _unobservable(expectation, outputs)
    return {
        "name": expectation.get("name"),
        "step": expectation.get("step"),
        "kind": expectation.get("kind") or default_kind(expectation.get("step")),
        "expected": shown if isinstance(expected, int | float) else expected_text.strip(),
        "observed": None if observed is MISSING else observed,
        "met": met and unobservable is None,
        **({"missing": True} if observed is MISSING else {}),
        # neither met nor unmet: the verdict does not count it either way
        **({"inconclusive": unobservable} if unobservable else {}),
    }


def _compare(op: Callable[[Any, Any], bool], observed: Any, expected: Any) -> bool:
    try:
        return bool(op(observed, expected))
    except TypeError:
        return False


def _observe(expectation: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    values = [_reference(outputs, r) for r in _references(expectation)]
    if any(v is MISSING for v in values):
        return MISSING
    if "observe_ratio" in expectation:
        numerator, denominator = values
        try:
            return round(numerator / denominator, 3)
        except (TypeError, ZeroDivisionError):
            return MISSING
    if "observe_seconds_between" in expectation:
        start, end = values
        try:
            return round(
                (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3
            )
        except (TypeError, ValueError):
            return MISSING
    return values[0]
