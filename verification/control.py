"""The kit's Chaos Toolkit control: guardrails before, verification after, a verdict.

Declared first in every experiment's `controls` (before the testbed's), it:

- validates: `chaos validate` (and `chaos run` before it starts) refuses a malformed
  extension in one line (`validate_control`);
- before the experiment: settles the configuration (defaults, types, ranges), reads the
  extension, checks the guardrails, takes the target's lock, or refuses the run (status
  `interrupted`, nothing touched, nothing to undo); records when the run started;
- before the method: arms a watchdog that interrupts the run, rollbacks included, once
  the method has lasted `max_run_duration_s`, and the stop conditions (sampled until the
  method ends; a breach interrupts the run the same way); opens the one connection the
  run observes the database through, waits until the steady state's throwaway instances
  have left the database, and starts sampling the connector and the database for the
  timeline;
- after the experiment: plays the rollbacks if Chaos Toolkit did not (the `default` and
  `never` strategies skip them), evaluates the expectations and the startup, waits for
  the steady state to come back (`recovery_timeout_s`), decides the verdict, and writes it
  all to the journal under `startup_chaos_kit`, credentials masked everywhere.

`chaos run` exits 0 only on the verdict the run expects (the configuration's `expect`,
else the extension's), and without an expectation on `reproduced` or `tolerated`.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaoslib.configuration import load_configuration
from chaoslib.exceptions import InterruptExecution, InvalidControl
from chaoslib.exit import exit_gracefully
from chaoslib.rollback import run_rollbacks
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.redaction import mask_passwords_in_logs, redact_secrets
from chaoskit.kit.signals import Deferred, deferred_signals, quiet_interrupted_tasks
from chaoskit.targets.database import DatabaseObserver, open_observer, wait_until_sessions_left
from chaoskit.targets.deployment import deployment_target
from chaoskit.targets.gcp.access import staging_access_problems
from chaoskit.testbed.control import REFUSAL_KEY as TESTBED_REFUSAL
from chaoskit.testbed.state import target_lock_path
from chaoskit.verification.configuration import check_expect, settle_configuration
from chaoskit.verification.expectations import evaluate_expectation, outputs_by_activity
from chaoskit.verification.extension import EXTENSION, KitExtension, read_extension
from chaoskit.verification.figures import capacity_at_rest, run_figures
from chaoskit.verification.guardrails import check_guardrails
from chaoskit.verification.recovery import wait_for_recovery
from chaoskit.verification.stop_conditions import StopConditions, arm_stop_conditions
from chaoskit.verification.timeline import TimelineSampler
from chaoskit.verification.tracing import check_trace_endpoint, put_verdict_on_trace
from chaoskit.verification.verdict import (
    as_expected,
    decide_verdict,
    expected_verdict,
    journal_status,
    verdict_line,
)

__all__ = [
    "EXTENSION",
    "JOURNAL_KEY",
    "after_experiment_control",
    "after_method_control",
    "before_experiment_control",
    "before_method_control",
    "before_rollback_control",
    "validate_control",
]

JOURNAL_KEY = "startup_chaos_kit"
_RUN_KEY = "_startup_chaos_kit_run"  # per-run state; added after the journal copied the experiment
_DEFAULT_RECOVERY_TIMEOUT_S = 30.0
_DEFAULT_SAMPLE_INTERVAL_S = 0.5
# the steady state's throwaway instances; the method starts once they have left
_THROWAWAY_PREFIX = "service-cold-start-"

logger = logging.getLogger("chaostoolkit")
mask_passwords_in_logs()
quiet_interrupted_tasks()


@dataclass
class _RunState:
    extension: KitExtension = field(default_factory=KitExtension)
    limits: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None
    interruption: str | None = None
    watchdog: threading.Timer | None = None
    sampler: TimelineSampler | None = None
    observer: DatabaseObserver | None = None
    lock: TargetLock | None = None
    stop_conditions: StopConditions | None = None
    method_started: bool = False
    capacity: dict[str, Any] = field(default_factory=dict)


def _setting(
    run: _RunState, configuration: Configuration | None, key: str, default: float
) -> float:
    if key in run.extension.settings:
        return run.extension.settings[key]
    return float((configuration or {}).get(key, default))


def _experiment_being_validated() -> Experiment | None:
    """chaoslib hands `validate_control` the control alone: the experiment it validates
    is a local of its `validate_controls` caller, found up the stack."""
    frame = inspect.currentframe()
    while frame is not None:
        candidate = frame.f_locals.get("experiment")
        if isinstance(candidate, dict) and "method" in candidate:
            return candidate
        frame = frame.f_back
    return None


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: refuse a malformed kit extension in one line."""
    experiment = _experiment_being_validated()
    if experiment is None:
        return
    try:
        read_extension(experiment)
        # the expectation CHAOS_EXPECT sets, as a run would read it
        check_expect(experiment, load_configuration(experiment.get("configuration") or {}))
    except KitError as error:
        raise InvalidControl(str(error)) from None


def before_experiment_control(
    context: Experiment,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **kwargs: Any,
) -> None:
    experiment = context
    configuration = configuration if configuration is not None else {}
    run = _RunState()
    experiment[_RUN_KEY] = run
    check_trace_endpoint()
    try:
        settle_configuration(experiment, configuration)
        run.extension = read_extension(experiment)
        run.limits = check_guardrails(experiment, configuration, secrets, run.extension.guardrails)
        target = deployment_target(configuration)
        if target == "staging":
            problems = staging_access_problems(configuration, secrets, experiment)
            if problems:
                raise KitError("staging is not ready: " + "; ".join(problems))
        lock = TargetLock(target_lock_path(target), f"chaos run of {experiment.get('title')!r}")
        if lock.acquire():  # a game day of this very process holds it otherwise
            run.lock = lock
    except KitError as refusal:
        run.refusal = str(refusal)
        experiment["rollbacks"] = []  # nothing ran, so nothing to undo
        raise InterruptExecution(run.refusal) from None
    configuration["run_started_at"] = time.time()


def before_method_control(
    context: Experiment,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **kwargs: Any,
) -> None:
    run: _RunState | None = context.get(_RUN_KEY)
    if run is None:
        return
    run.method_started = True
    max_run_duration_s = float(run.limits["max_run_duration_s"])

    def interrupt() -> None:
        run.interruption = f"interrupted at max_run_duration_s={max_run_duration_s:g}"
        logger.error(f"The run exceeded {max_run_duration_s:g}s: interrupting it, with rollbacks")
        exit_gracefully()

    # from the method's start: how long a testbed takes to come up never counts
    run.watchdog = threading.Timer(max_run_duration_s, interrupt)
    run.watchdog.daemon = True
    run.watchdog.start()
    dsn = (configuration or {}).get("admin_database_url")
    if dsn:
        try:
            run.observer = open_observer(dsn)
            # the method starts from the same sessions every run
            if not wait_until_sessions_left(dsn, _THROWAWAY_PREFIX):
                logger.warning("Throwaway instances of the steady state still hold sessions")
        except KitError as error:
            logger.warning(f"The kit cannot observe the database: {error}")
    run.capacity = capacity_at_rest(configuration or {})
    interval = _setting(run, configuration, "sample_interval_s", _DEFAULT_SAMPLE_INTERVAL_S)
    run.sampler = TimelineSampler(configuration, interval)
    run.sampler.start()
    run.stop_conditions = arm_stop_conditions(
        context, configuration or {}, secrets, run.extension.stop_conditions
    )


def after_method_control(context: Experiment, **kwargs: Any) -> None:
    run: _RunState | None = context.get(_RUN_KEY)
    if run is not None and run.stop_conditions is not None:
        run.stop_conditions.disarm()  # they watch the method only


def before_rollback_control(context: Experiment, **kwargs: Any) -> None:
    run: _RunState | None = context.get(_RUN_KEY)
    if run is None:
        return
    if run.watchdog is not None:
        run.watchdog.cancel()  # rollbacks are never cut short
    if run.stop_conditions is not None:
        run.stop_conditions.disarm()


def _play_skipped_rollbacks(
    experiment: Experiment, journal: Journal, configuration: Configuration, secrets: Secrets
) -> bool:
    if not experiment.get("rollbacks") or journal.get("rollbacks"):
        return False
    logger.warning("Rollbacks were skipped by the rollback strategy: the kit plays them now")
    runs: list[dict[str, Any]] = []
    for _ in run_rollbacks(experiment, configuration, secrets, None, None, runs=runs):
        pass
    journal["rollbacks"] = runs
    return True


def after_experiment_control(
    context: Experiment,
    state: Journal | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **kwargs: Any,
) -> None:
    experiment, journal = context, state
    run: _RunState | None = experiment.pop(_RUN_KEY, None)
    if run is None or journal is None:
        return
    run.interruption = run.interruption or experiment.pop(TESTBED_REFUSAL, None)
    try:
        # a signal now would cost the journal: it is recorded, and the verdict says so
        with deferred_signals() as interrupted:
            _verify(experiment, journal, run, configuration or {}, secrets, interrupted)
    except Exception as error:  # noqa: BLE001 - Chaos Toolkit would swallow it silently
        logger.error(f"The kit could not verify the run: {type(error).__name__}: {error}")
        journal[JOURNAL_KEY] = redact_secrets(
            {"verdict": "error", "reason": f"verification failed: {type(error).__name__}: {error}"}
        )
        journal["status"] = "failed"
    finally:
        if run.observer is not None:
            registry.unregister(run.observer.kind, run.observer.name)
            run.observer.stop()
        if run.lock is not None:
            run.lock.release()


def _stopped_reason(breach: dict[str, Any]) -> str:
    sample = breach["sample"]
    details = {k: v for k, v in sample.items()
               if k not in ("condition", "status", "value", "threshold", "url")}  # fmt: skip
    shown = ", ".join(f"{k}={v}" for k, v in details.items())
    return (f"stopped by the stop condition {breach['condition']}: {sample.get('value')} "
            f"above {sample.get('threshold')} ({shown})")  # fmt: skip


def _verify(
    experiment: Experiment,
    journal: Journal,
    run: _RunState,
    configuration: Configuration,
    secrets: Secrets | None,
    interrupted: Deferred,
) -> None:
    if run.watchdog is not None:
        run.watchdog.cancel()
    section: dict[str, Any] = {"guardrails": {"limits": run.limits, "refused": run.refusal}}
    if run.stop_conditions is not None:
        run.stop_conditions.disarm()
        section["stop_conditions"] = run.stop_conditions.journal()
        breach = section["stop_conditions"]["stopped_by"]
        if breach is not None:
            run.interruption = _stopped_reason(breach)
            # as chaostoolkit-addons' safeguard control records it
            journal["safeguards"] = run.stop_conditions.safeguards_record()
    recovery = startup = None
    expectations: list[dict[str, Any]] = []
    if run.refusal is None:
        section["rollbacks_forced"] = _play_skipped_rollbacks(
            experiment, journal, configuration, secrets
        )
        if run.method_started:
            outputs = outputs_by_activity(journal)
            expectations = [
                evaluate_expectation(e, outputs, configuration) for e in run.extension.expectations
            ]
            if run.extension.startup is not None:
                startup = evaluate_expectation(
                    {"name": "startup_succeeded", **run.extension.startup}, outputs, configuration
                )
            timeout_s = _setting(
                run, configuration, "recovery_timeout_s", _DEFAULT_RECOVERY_TIMEOUT_S
            )
            recovery = wait_for_recovery(
                experiment, configuration, secrets, timeout_s, interrupted.event
            )
    if run.sampler is not None:
        section["timeline"] = run.sampler.stop()
    if interrupted.received and run.interruption is None:
        run.interruption = f"interrupted by {interrupted.received} during the verification"
        journal["status"] = "interrupted"
    verdict, reason = decide_verdict(
        journal,
        expectations,
        startup,
        recovery,
        run.refusal or run.interruption,
        dry=bool(experiment.get("dry")),
    )
    expected = expected_verdict(configuration.get("expect"), run.extension.expect)
    section.update(
        # what recommendations are computed from: the run's figures and the capacity
        # the method started with
        figures=run_figures(configuration),
        capacity=run.capacity,
        # what the report reads the numbers by: the target, and the phase that opens the pool
        target=configuration.get("target"),
        database_phase=configuration.get("database_phase"),
        interrupted_by=interrupted.received,
        baseline_reset=configuration.get("baseline_reset", []),
        verdict=verdict,
        expected=expected,
        as_expected=as_expected(verdict, expected),
        reason=reason,
        decided_at=datetime.now(UTC).isoformat(),
        expectations=expectations,
        startup=startup,
        recovery=recovery,
    )
    journal["status"] = journal_status(verdict, journal.get("status", "completed"), expected)
    journal[JOURNAL_KEY] = section
    for key, value in list(journal.items()):
        journal[key] = redact_secrets(value)
    surprise = expected is not None and verdict != expected
    (logger.error if surprise else logger.info)(verdict_line(verdict, reason, expected))
    put_verdict_on_trace(verdict, journal[JOURNAL_KEY]["reason"])
