"""Run a game day: every experiment of a suite, in order, through chaostoolkit-lib.

Preflight first (a sick target is skipped, not tested), under a lock so that two game
days never overlap on one target. Each experiment runs with rollbacks always and the
time left in the game day's budget as its own limit; its journal is written whole to
`<journals>/<gameday id>/<experiment>.json`, and `summary.json` beside it lists every
verdict; `report.html` and `report.md` review it with the game days before it. SIGINT
or SIGTERM stops the game day: the current experiment rolls back, the summary is
written, nothing is left running.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from chaoslib.configuration import load_configuration
from chaoslib.exceptions import ChaosException
from chaoslib.types import Settings
from chaostoolkit.signals import SignalRecorder
from rich.console import Console

from chaoskit.gameday.execution import StopSignals, run_experiment_file
from chaoskit.gameday.exit_codes import EXIT_CODES
from chaoskit.gameday.preflight import run_preflight
from chaoskit.gameday.progress import GameDayProgress
from chaoskit.gameday.suite import Suite, SuiteExperiment
from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.files import write_json_atomically
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.redaction import redact_secrets
from chaoskit.kit.settings import RunSettings
from chaoskit.report.agent import toolkit_outcome
from chaoskit.report.analysis import describe_unmet
from chaoskit.report.report import write_reports
from chaoskit.testbed.lifecycle import (
    is_up,
    testbed_down,
    testbed_endpoints,
    testbed_up,
)
from chaoskit.testbed.state import read_state, target_lock_path
from chaoskit.verification.control import JOURNAL_KEY

__all__ = ["GameDayResult", "new_gameday_id", "run_gameday"]

_MIN_EXPERIMENT_BUDGET_S = 5.0


@dataclass
class GameDayResult:
    summary: dict[str, Any]
    exit_code: int


def new_gameday_id() -> str:
    return f"gd-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:4]}"


def _endpoints(config_vars: dict[str, Any]) -> dict[str, Any]:
    """The target's endpoints, for the preflight: the running testbed's, or the
    profile's (environment variables resolved)."""
    if not RunSettings.of(config_vars).on_staging:
        state = read_state()
        if not is_up(state):
            return {}
        # the service the testbed runs answers its own ready path
        return {**testbed_endpoints(state), "service": state["service"].get("system")}
    return load_configuration(dict(config_vars))


def _run_one(
    item: SuiteExperiment,
    config_vars: dict[str, Any],
    secret_vars: dict[str, Any],
    settings: Settings,
    budget_s: float,
    progress: GameDayProgress,
    stop: StopSignals,
) -> tuple[dict[str, Any], SignalRecorder]:
    profile = RunSettings.of(config_vars).guardrails or {}
    guardrails = {**profile, "max_run_duration_s": budget_s}
    # the suite's expectation is the run's, so that its journal says what the summary says
    variables = {**config_vars, **item.vars, "guardrails": guardrails, "expect": item.expect}
    return run_experiment_file(item.path, variables, secret_vars, settings, stop, [progress])


def _entry(item: SuiteExperiment, journal: dict[str, Any] | None, path: Path | None) -> dict:
    kit = (journal or {}).get(JOURNAL_KEY) or {}
    verdict = kit.get("verdict", "error" if journal is not None else "not-run")
    unmet = next((e for e in kit.get("expectations") or [] if not e.get("met")), None)
    return {
        "name": item.name,
        "file": str(item.path),
        "expected": item.expect,
        "verdict": verdict,
        "as_expected": verdict == item.expect,
        "reason": kit.get("reason"),
        "first_unmet": describe_unmet(unmet) if unmet else None,
        "status": (journal or {}).get("status"),
        "duration_s": round((journal or {}).get("duration") or 0.0, 3),
        "time_to_recover_s": (kit.get("recovery") or {}).get("time_to_recover_s"),
        "journal": str(path) if path else None,
        # the toolkit's own words for the run, for agents and CI that read them
        "toolkit": toolkit_outcome(journal, str(item.path), str(path)) if journal else None,
    }


def _preflight(
    config_vars: dict[str, Any], progress: GameDayProgress, gameday_id: str
) -> tuple[dict[str, Any], bool]:
    """(preflight report, whether the game day started the embedded testbed)."""
    started_testbed = False
    try:
        if not RunSettings.of(config_vars).on_staging and not is_up(read_state()):
            progress.note("starting the embedded testbed")
            testbed_up(started_by=f"gameday:{gameday_id}", configuration=config_vars)
            started_testbed = True
        return run_preflight(_endpoints(config_vars)), started_testbed
    except (KitError, ChaosException) as error:
        return {"healthy": False, "checks": {}, "reasons": [str(error)]}, started_testbed


def _finish(summary: dict[str, Any], started_at: datetime, folder: Path) -> None:
    ended = datetime.now(UTC)
    summary["ended_at"] = ended.isoformat()
    summary["duration_s"] = round((ended - started_at).total_seconds(), 3)
    summary["all_as_expected"] = bool(summary["experiments"]) and all(
        e["as_expected"] for e in summary["experiments"]
    )
    write_json_atomically(folder / "summary.json", redact_secrets(summary))


def run_gameday(
    suite: Suite,
    journals: Path,
    console: Console | None = None,
    settings: Settings | None = None,
    stop: StopSignals | None = None,
) -> GameDayResult:
    """Hold the game day described by `suite`; journals go under `journals/<id>/`.
    `settings` are the user's Chaos Toolkit settings (global controls, notifications);
    `stop`, the signals already watched (while the game day's checks ran): one received
    meanwhile interrupts it before its first experiment."""
    settings = settings or {}
    console = console or Console()
    gameday_id = new_gameday_id()
    folder = journals / gameday_id
    config_vars, secret_vars = merge_vars({}, [str(p) for p in suite.profiles])
    target = RunSettings.of(config_vars).target
    started_at = datetime.now(UTC)
    summary: dict[str, Any] = {
        "gameday_id": gameday_id,
        "suite": str(suite.path),
        "name": suite.name,
        "profiles": [str(p) for p in suite.profiles],
        "target": target,
        "started_at": started_at.isoformat(),
        "time_limit_s": suite.time_limit_s,
        "experiments": [],
        "preflight": None,  # none when interrupted before it
        # until the game day says otherwise: a summary always has its status
        "status": "error",
    }
    progress = GameDayProgress(gameday_id, len(suite.experiments), suite.time_limit_s, console)
    lock = TargetLock(target_lock_path(target), f"game day {gameday_id}")
    started_testbed = False
    watched = contextlib.nullcontext(stop) if stop is not None else StopSignals()
    with lock, watched as stop, progress:
        try:
            if stop.signal is None:
                summary["preflight"], started_testbed = _preflight(
                    config_vars, progress, gameday_id
                )
            if stop.signal is not None:  # during the checks or the preflight
                summary["status"] = "interrupted"
                summary["experiments"] = [_entry(item, None, None) for item in suite.experiments]
                progress.note(f"interrupted by {stop.signal} before the first experiment")
            elif summary["preflight"]["healthy"]:
                summary["status"] = _run_all(
                    suite, folder, (config_vars, secret_vars), settings, progress, stop, summary
                )
            else:
                summary["status"] = "skipped"
                progress.note("preflight failed: " + "; ".join(summary["preflight"]["reasons"]))
        finally:
            for leftover in registry.stop_all():  # the last safety net
                progress.note(f"stopped {leftover['kind']} {leftover['name']!r} left running")
            if started_testbed:
                testbed_down()
            _finish(summary, started_at, folder)
            # the report covers every game day under `journals`, so trends have a past
            write_reports([journals], folder / "report.html", folder / "report.md")
    if summary["status"] in ("skipped", "interrupted"):
        return GameDayResult(summary, EXIT_CODES[summary["status"]])
    code = "as-expected" if summary["all_as_expected"] else "not-as-expected"
    return GameDayResult(summary, EXIT_CODES[code])


def _run_all(
    suite: Suite,
    folder: Path,
    variables: tuple[dict[str, Any], dict[str, Any]],
    settings: Settings,
    progress: GameDayProgress,
    stop: StopSignals,
    summary: dict[str, Any],
) -> str:
    """Run the experiments in order; return the game day's status."""
    status = "completed"
    for index, item in enumerate(suite.experiments, 1):
        if status == "completed" and stop.signal:  # between two experiments
            status = "interrupted"
        if status == "completed" and progress.remaining_s() < _MIN_EXPERIMENT_BUDGET_S:
            status = "time_limit"
        if status != "completed":
            summary["experiments"].append(_entry(item, None, None))
            continue
        progress.begin(index, item.name)
        try:
            journal, recorder = _run_one(
                item, *variables, settings, progress.remaining_s(), progress, stop
            )
        except KeyboardInterrupt:
            # interrupted outside the part Chaos Toolkit guards: undo what is registered
            registry.stop_all()
            stop.signal = stop.signal or "SIGINT"
            reason = f"interrupted by {stop.signal} before its journal was complete"
            entry = {**_entry(item, None, None), "verdict": "aborted", "reason": reason}
            summary["experiments"].append(entry)
            progress.finished(item.name, "aborted", False)
            status = "interrupted"
            continue
        except (ChaosException, KitError) as error:
            entry = {**_entry(item, None, None), "verdict": "error", "reason": str(error)}
            summary["experiments"].append(entry)
            progress.finished(item.name, "error", False)
            continue
        path = folder / f"{item.name}.json"
        write_json_atomically(path, redact_secrets(journal))
        entry = _entry(item, journal, path)
        summary["experiments"].append(entry)
        progress.finished(item.name, entry["verdict"], entry["as_expected"])
        # a signal during the kit's verification is recorded in the journal, not raised
        kit = journal.get(JOURNAL_KEY) or {}
        stop.signal = stop.signal or recorder.received or kit.get("interrupted_by")
        if stop.signal:
            status = "interrupted"
        elif not entry["as_expected"] and suite.on_failure == "stop":
            status = "stopped"
    return status
