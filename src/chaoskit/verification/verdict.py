"""The verdict: the one word a reader looks at first, decided from the physics of the run.

Expectations are of two kinds: `pressure` (evidence that the fault was applied as
declared) and `outcome` (what the startup did). In order of precedence:

- `aborted`: the run did not get to judge (a guardrail refused it, it was interrupted,
  the steady state was not met before the method);
- `error`: an activity failed;
- `not-recovered`: the steady state did not come back after the rollbacks;
- `inconclusive`: it was a dry run, the pressure was not applied as declared (a pressure
  expectation not met, say 0 connections established), or the startup was not
  observed: nothing can be said about the system. An outcome expectation on what the
  service's log does not report is itself inconclusive, and counts neither way;
- `tolerated`: the pressure was applied and the startup succeeded: the system withstood it;
- `reproduced`: the pressure was applied and the startup failed as declared;
- `deviated`: the pressure was applied and the startup failed, but not as declared
  (another phase, cause or exit code): neither a reproduction nor a pass.

A run may say which verdict it expects (the extension's `expect`, or the configuration's,
which `CHAOS_EXPECT` or a var-file sets for one run): then it passes on that verdict
alone, so that one `chaos run` can gate a fix. Without an expectation it passes on
`reproduced` and `tolerated`.
"""

from __future__ import annotations

import re
from typing import Any

from chaoskit.kit.documents import displayed

__all__ = [
    "EXPECTABLE",
    "EXPECT_HINT",
    "PASSING",
    "VERDICTS",
    "as_expected",
    "decide_verdict",
    "expected_verdict",
    "journal_status",
    "verdict_line",
]

VERDICTS = (
    "reproduced",
    "tolerated",
    "deviated",
    "inconclusive",
    "not-recovered",
    "aborted",
    "error",
)
# what a game day may expect: the others never count as "as expected"
EXPECTABLE = ("reproduced", "tolerated", "deviated", "not-recovered")
# `chaos run` exits 0 on these, 1 on every other verdict, when the run expects none
PASSING = ("reproduced", "tolerated")
EXPECT_HINT = (
    f"use one of {', '.join(EXPECTABLE)} (an inconclusive, aborted or failed run is never "
    "as expected)"
)


def _first_failed_activity(journal: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in journal.get("run") or [] if r.get("status") == "failed"), None)


def _failed_hypothesis_probe(before: dict[str, Any]) -> str:
    """The first steady-state probe not met, with why when its output says (an instance
    of the system under test that never came up)."""
    for probe in before.get("probes") or []:
        if not probe.get("tolerance_met", True) or probe.get("status") != "succeeded":
            output = probe.get("output")
            reason = output.get("reason") if isinstance(output, dict) else None
            name = probe["activity"]["name"]
            return f"{name} ({reason})" if reason else name
    return "a steady-state probe"


def _describe(result: dict[str, Any]) -> str:
    """e.g. `flood_applied expected == true, observed false`: values as the experiment
    writes them."""
    return (
        f"{result['name']} expected {result['expected']}, observed {displayed(result['observed'])}"
    )


def decide_verdict(
    journal: dict[str, Any],
    expectations: list[dict[str, Any]],
    startup: dict[str, Any] | None,
    recovery: dict[str, Any] | None,
    interruption: str | None,
    dry: bool = False,
) -> tuple[str, str]:
    """(verdict, reason) for a finished run: `expectations` are the evaluated results,
    `startup` the evaluated startup-succeeded criterion (None when none is declared)."""
    if interruption:
        return "aborted", interruption
    if journal.get("status") == "interrupted":
        return "aborted", "the run was interrupted"
    before = (journal.get("steady_states") or {}).get("before")
    if before is not None and not before.get("steady_state_met"):
        probe = _failed_hypothesis_probe(before)
        return "aborted", f"steady state not met before the method: {probe}"
    failed = _first_failed_activity(journal)
    if failed is not None:
        exception = failed.get("exception") or ["failed"]
        text = "".join(exception) if isinstance(exception, list) else str(exception)
        # Chaos Toolkit repeats the exception's type before its message: say it once
        last = re.sub(r"^(\S+: )\1+", r"\1", text.strip().splitlines()[-1].strip())
        return "error", f"{failed['activity']['name']}: {last}"
    if dry:
        return "inconclusive", "a dry run: no activity was applied"
    if recovery is not None and not recovery["recovered"]:
        return "not-recovered", (
            f"steady state not back {recovery['recovery_timeout_s']}s after the rollbacks"
        )
    unapplied = [e for e in expectations if e["kind"] == "pressure" and not e["met"]]
    if unapplied:
        if unapplied[0].get("inconclusive"):
            return "inconclusive", f"{unapplied[0]['name']}: {unapplied[0]['inconclusive']}"
        return "inconclusive", f"pressure not applied as declared: {_describe(unapplied[0])}"
    if startup is None:
        return "inconclusive", "no expectations declared: nothing to judge the startup by"
    if startup.get("missing"):
        return "inconclusive", "the startup was not observed: its report is not in the journal"
    if startup.get("inconclusive"):
        return "inconclusive", f"the startup was not observed: {startup['inconclusive']}"
    if startup["met"]:
        return "tolerated", f"the startup succeeded under pressure ({_describe(startup)})"
    # what the service's log does not say counts neither way
    outcome = [e for e in expectations if e["kind"] == "outcome" and not e.get("inconclusive")]
    if not outcome:
        return "inconclusive", "the startup failed, but its log reports nothing the chain checks"
    unmet = [e for e in outcome if not e["met"]]
    if not unmet:
        return "reproduced", f"pressure applied and all {len(outcome)} outcome expectations met"
    return "deviated", f"the startup failed, but not as declared: {_describe(unmet[0])}"


def expected_verdict(configured: Any, declared: str | None) -> str | None:
    """What the run expects: the configuration's `expect` over the extension's; a
    configured value that is no verdict to expect (the run was refused for it) counts
    as none."""
    return configured if configured in EXPECTABLE else declared


def as_expected(verdict: str, expected: str | None) -> bool:
    """Whether the run passes: its verdict is the one expected; with no expectation,
    `chaos run`'s own rule (`reproduced` or `tolerated`)."""
    return verdict == expected if expected else verdict in PASSING


def verdict_line(verdict: str, reason: str, expected: str | None) -> str:
    """The one line a run ends with."""
    if expected is None:
        return f"Verdict: {verdict} ({reason})"
    if verdict == expected:
        return f"Verdict: {verdict}, as expected ({reason})"
    return f"Verdict: {verdict}, expected {expected}: {reason}"


def journal_status(verdict: str, status: str, expected: str | None = None) -> str:
    """The Chaos Toolkit status that makes `chaos run` exit 0 only when the verdict is
    as expected (see `as_expected`)."""
    if as_expected(verdict, expected):
        return status
    if verdict == "aborted":
        return status if status == "interrupted" else "aborted"
    return "failed"
