"""JUnit XML for CI (`--junit` on `chaos gameday run` and `chaos gameday report`): one
test case per experiment, failed when its verdict is not the one expected, with the
reason and the first unmet expectation as the message, its duration and its journal.
Written with junitparser, so any CI renders it without custom code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from junitparser import Failure, JUnitXml, TestCase, TestSuite

__all__ = ["write_junit"]


def _case(entry: dict[str, Any], suite: str) -> TestCase:
    case = TestCase(entry["name"], classname=suite, time=entry.get("duration_s") or 0.0)
    if not entry["as_expected"]:
        message = f"{entry['verdict']}, expected {entry['expected']}: {entry.get('reason')}"
        failure = Failure(message, type_=entry["verdict"])
        failure.text = f"first unmet expectation: {entry.get('first_unmet') or '-'}"
        case.result = [failure]
    case.system_out = f"verdict: {entry['verdict']}\njournal: {entry.get('journal') or '-'}"
    return case


def write_junit(path: Path, suite: str, entries: list[dict[str, Any]]) -> None:
    """Write `entries` (`name`, `expected`, `verdict`, `as_expected`, `reason`,
    `first_unmet`, `duration_s`, `journal`) as one JUnit test suite, whole or not at all;
    raises OSError when `path` cannot be written."""
    junit_suite = TestSuite(suite)
    for entry in entries:
        junit_suite.add_testcase(_case(entry, suite))
    document = JUnitXml()
    document.add_testsuite(junit_suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    document.write(str(partial), pretty=True)
    partial.replace(path)
