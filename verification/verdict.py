"""The verdict: the one word a reader looks at first.

- `reproduced`: every expectation met, and the system recovered after the rollbacks;
- `tolerated`: the system withstood the pressure (some expectation not met) and recovered;
- `not-recovered`: the steady state did not come back after the rollbacks;
- `aborted`: the run did not get to judge (steady state not met before the method, a
  guardrail refused it, it was interrupted): not a pass;
- `error`: an activity failed.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["VERDICTS", "decide_verdict"]

VERDICTS = ("reproduced", "tolerated", "not-recovered", "aborted", "error")


def _first_failed_activity(journal: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in journal.get("run") or [] if r.get("status") == "failed"), None)


def _failed_hypothesis_probe(before: dict[str, Any]) -> str:
    for probe in before.get("probes") or []:
        if not probe.get("tolerance_met", True) or probe.get("status") != "succeeded":
            return probe["activity"]["name"]
    return "a steady-state probe"


def decide_verdict(
    journal: dict[str, Any],
    expectations: list[dict[str, Any]],
    recovery: dict[str, Any] | None,
    interruption: str | None,
) -> tuple[str, str]:
    """(verdict, reason) for a finished run."""
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
    if recovery is not None and not recovery["recovered"]:
        return "not-recovered", (
            f"steady state not back {recovery['recovery_timeout_s']}s after the rollbacks"
        )
    unmet = [e for e in expectations if not e["met"]]
    if expectations and not unmet:
        return "reproduced", f"all {len(expectations)} expectations met, and recovered"
    if not expectations:
        return "tolerated", "no expectations declared; the system recovered"
    first = unmet[0]
    return "tolerated", (
        f"{first['name']} expected {first['expected']}, observed {first['observed']!r}"
    )
