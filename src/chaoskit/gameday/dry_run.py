"""Look before touching: `--dry-run` of `chaos gameday run`, `limit` and `recommend
--verify` checks what they would check first and says what they would run, in which
order and for how long at most, then stops: nothing is started, locked or written.

- the suite, its profiles and every experiment's validation, as the command loads them;
- each run's configuration settled and its guardrails checked with it substituted, as
  the kit's control does before a run (with the testbed's endpoints when it is up);
- the target's preflight: on the embedded testbed whether it is up, healthy and at its
  baseline (a testbed that is down is not started: the run would start it); on staging
  the account's permissions and the profile's resources (the staging check);
- who holds the target's lock, if anyone.

Exit codes, as the command itself would end: 0 nothing in the way; 1 some run would be
refused; 3 the target fails its preflight; 4 another run holds the target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from chaoslib.configuration import load_configuration
from chaoslib.secret import load_secrets
from chaoslib.types import Experiment
from rich.console import Console
from rich.table import Table

from chaoskit.gameday.exit_codes import EXIT_CODES
from chaoskit.gameday.experiment_file import load_experiment_file
from chaoskit.gameday.limit import checked_sweep, most_probes
from chaoskit.gameday.preflight import run_preflight
from chaoskit.gameday.suite import Suite
from chaoskit.kit.errors import KitError
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.settings import RunSettings
from chaoskit.testbed.baseline import find_drift
from chaoskit.testbed.lifecycle import is_up, testbed_endpoints
from chaoskit.testbed.state import read_state, target_lock_path
from chaoskit.verification.configuration import run_configuration
from chaoskit.verification.extension import read_extension
from chaoskit.verification.guardrails import check_guardrails

__all__ = ["Plan", "PlannedRun", "plan_gameday", "plan_sweep", "plan_verification", "show_plan"]


@dataclass
class PlannedRun:
    """One run the command would make, as the kit's control would find it."""

    name: str
    path: Path
    over: dict[str, Any]  # configuration over the profiles (a suite's vars, a probe's value)
    expect: str | None = None
    refusal: str | None = None  # why the run would be refused before anything ran
    method_s: float | None = None  # max_run_duration_s: the method is interrupted there
    recovery_s: float | None = None  # the wait for the steady state after the rollbacks


@dataclass
class Plan:
    """What a command would do; `show_plan` prints it and says how it would end."""

    command: str
    target: str
    runs: list[PlannedRun]
    at_most: str  # how long it takes at most, in words
    preflight: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    holder: str | None = None


def _plan_run(
    name: str,
    path: Path,
    variables: dict[str, Any],
    secret_vars: dict[str, Any],
    endpoints: dict[str, Any],
    over: dict[str, Any],
) -> PlannedRun:
    """The run of `path` with `variables`, checked as the kit's control checks it
    before anything runs (the testbed's `endpoints` filled in as its control does)."""
    planned = PlannedRun(name, path, over, variables.get("expect"))
    try:
        experiment: Experiment = load_experiment_file(path)
        configuration = run_configuration(experiment, variables)
        secrets = load_secrets(experiment.get("secrets") or {}, configuration, dict(secret_vars))
        RunSettings.provide(configuration, endpoints, fill_only=True)
        extension = read_extension(experiment)
        limits = check_guardrails(experiment, configuration, secrets, extension.guardrails)
    except KitError as error:
        planned.refusal = str(error)
        return planned
    except Exception as error:  # noqa: BLE001 - chaoslib's own configuration errors
        planned.refusal = f"{type(error).__name__}: {error}"
        return planned
    settings = RunSettings.of(configuration)
    planned.expect = settings.expect or extension.expect or planned.expect
    planned.method_s = float(limits["max_run_duration_s"])
    planned.recovery_s = extension.settings.get("recovery_timeout_s", settings.recovery_timeout_s)
    return planned


def _target(config_vars: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any], list]:
    """(target, its preflight, the endpoints runs would get, notes), without starting,
    locking or changing anything."""
    target = RunSettings.of(config_vars).target
    if target != "embedded":
        try:
            report = run_preflight(load_configuration(dict(config_vars)))
        except Exception as error:  # noqa: BLE001 - a profile chaoslib cannot resolve
            report = {"healthy": False, "checks": {}, "reasons": [str(error)]}
        return target, report, {}, []
    state = read_state()
    if not is_up(state):
        note = "the embedded testbed is down: the command would start it (it is not started now)"
        return target, {}, {}, [note]
    endpoints = testbed_endpoints(state)
    report = run_preflight(endpoints)
    try:
        drift = find_drift(state)
    except KitError as error:
        drift = [f"cannot tell ({error})"]
    note = (
        f"drifted from its baseline (the first run resets it): {'; '.join(drift)}"
        if drift
        else "at its baseline"
    )
    return target, report, endpoints, [f"the embedded testbed is up, {note}"]


def _plan(command: str, config_vars: dict[str, Any]) -> tuple[Plan, dict[str, Any]]:
    target, report, endpoints, notes = _target(config_vars)
    holder = TargetLock(target_lock_path(target), "").held_by()
    return Plan(command, target, [], "", report, notes, holder), endpoints


def _duration(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:g} s"


def _longest(runs: Iterable[PlannedRun]) -> float:
    return sum((r.method_s or 0) + (r.recovery_s or 0) for r in runs)


def plan_gameday(suite: Suite) -> Plan:
    """What `chaos gameday run` of `suite` would do."""
    config_vars, secret_vars = merge_vars({}, [str(p) for p in suite.profiles])
    plan, endpoints = _plan(f"game day {suite.name} ({suite.path})", config_vars)
    for item in suite.experiments:
        # as the game day runs it: the suite's expectation, its budget as the run's limit
        guardrails = {
            **(RunSettings.of(config_vars).guardrails or {}),
            "max_run_duration_s": suite.time_limit_s,
        }
        variables = {**config_vars, **item.vars, "guardrails": guardrails, "expect": item.expect}
        plan.runs.append(
            _plan_run(item.name, item.path, variables, secret_vars, endpoints, dict(item.vars))
        )
    plan.at_most = (
        f"{_duration(suite.time_limit_s)}: the suite's time_limit_min (no experiment starts "
        "past it; the one under way is interrupted there, then rolled back)"
    )
    return plan


def plan_sweep(
    path: Path,
    knob_name: str | None,
    low: float | None,
    high: float | None,
    repeat: int,
    profiles: list[Path],
) -> Plan:
    """What `chaos gameday limit` would do: the runs at both ends of the range checked,
    the bisection between them counted. LimitError, as the sweep itself would say."""
    _, knob, low, high = checked_sweep(path, knob_name, low, high, repeat)
    config_vars, secret_vars = merge_vars({}, [str(p) for p in profiles])
    plan, endpoints = _plan(f"breaking-point sweep of {path.name} over {knob.name}", config_vars)
    for end in sorted({knob.value(low), knob.value(high)}):
        variables = {**config_vars, knob.name: end}
        plan.runs.append(
            _plan_run(
                f"{path.stem} at {knob.name}={end}",
                path,
                variables,
                secret_vars,
                endpoints,
                {knob.name: end},
            )
        )
    probes = most_probes(knob, low, high, repeat)
    each = max(_longest([run]) for run in plan.runs)
    plan.at_most = (
        f"{probes} probes ({_duration(probes * each)}): both ends, then bisection to "
        f"{knob.resolution:g} {knob.unit} between them"
        + (f", and {repeat - 1} more runs either side of it" if repeat > 1 else "")
    )
    return plan


def plan_verification(
    recommendations: dict[str, Any], experiments: dict[str, Path], profiles: list[Path]
) -> Plan:
    """What `chaos gameday recommend --verify` would do: every experiment that reproduced,
    run again with the recommendations (`key: value`) over `profiles`."""
    config_vars, secret_vars = merge_vars({}, [str(p) for p in profiles])
    config_vars.update(recommendations)
    plan, endpoints = _plan("verification of the recommendations", config_vars)
    for name, path in experiments.items():
        plan.runs.append(
            _plan_run(name, path, config_vars, secret_vars, endpoints, dict(recommendations))
        )
    plan.at_most = f"{_duration(_longest(plan.runs))}: every run's method and recovery at most"
    return plan


def _shown(over: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in over.items()) or "-"


def show_plan(plan: Plan, console: Console) -> int:
    """Print the plan; return the exit code the command would end with, as it stands."""
    console.print(
        f"Dry run of the {plan.command}: nothing is started, locked or written.",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title=f"what would run, in order, on {plan.target}")
    for column in (
        "#",
        "experiment",
        "expects",
        "over the profile",
        "method at most",
        "recovery at most",
        "checks",
    ):
        table.add_column(column)
    for index, run in enumerate(plan.runs, 1):
        table.add_row(
            str(index),
            run.name,
            run.expect or "-",
            _shown(run.over),
            "-" if run.method_s is None else _duration(run.method_s),
            "-" if run.recovery_s is None else _duration(run.recovery_s),
            "REFUSED (below)" if run.refusal else "ok",
        )
    console.print(table)
    for run in plan.runs:
        if run.refusal:
            console.print(f"{run.name}: refused: {run.refusal}", highlight=False, soft_wrap=True)
    console.print(f"At most {plan.at_most}.", highlight=False, soft_wrap=True)
    for note in plan.notes:
        console.print(f"Target: {note}.", highlight=False, soft_wrap=True)
    for check, outcome in (plan.preflight.get("checks") or {}).items():
        console.print(f"Preflight {check}: {outcome}", highlight=False, soft_wrap=True)
    if plan.holder:
        console.print(
            f"Lock: held by {plan.holder}: the command would be refused",
            highlight=False,
            soft_wrap=True,
        )
    refused = [run for run in plan.runs if run.refusal]
    if plan.holder:
        return EXIT_CODES["locked"]
    if plan.preflight and not plan.preflight.get("healthy"):
        console.print("The target fails its preflight: the command would skip it.", highlight=False)
        return EXIT_CODES["skipped"]
    if refused:
        console.print(
            f"{len(refused)} of {len(plan.runs)} runs would be refused before they start.",
            highlight=False,
        )
        return EXIT_CODES["not-as-expected"]
    console.print(f"Nothing in the way: {len(plan.runs)} runs would start.", highlight=False)
    return EXIT_CODES["as-expected"]
