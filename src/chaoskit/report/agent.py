"""The Chaos Toolkit agent report's words for a run, beside the kit's verdict: a CI or an
agent that reads `chaos run`'s own report finds `outcome`, `conclusive` and `warnings`
in the kit's JSON outputs too (`summary.json`, `chaos gameday report --json`)."""

from __future__ import annotations

from typing import Any

from chaostoolkit.agent import run_report

__all__ = ["toolkit_outcome"]


def toolkit_outcome(journal: dict[str, Any], source: str, journal_path: str) -> dict[str, Any]:
    """`{"outcome", "conclusive", "warnings"}` as `chaostoolkit.agent` classifies the
    journal: the toolkit's view (did the steady state hold), which the kit's verdict
    refines (did the startup fail as the incident's chain declares)."""
    exit_code = 0 if journal.get("status") == "completed" else 1
    report = run_report(journal, source=source, journal_path=journal_path, exit_code=exit_code)
    return {key: report[key] for key in ("outcome", "conclusive", "warnings")}
