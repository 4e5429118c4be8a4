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
  timeline; an interruption of the method releases the pressure at once (see
  `chaoskit.verification.supervision`);
- before the rollbacks: stands the watchers down and holds SIGINT and SIGTERM until every
  rollback has played;
- after the experiment: plays the rollbacks if Chaos Toolkit did not (the `default` and
  `never` strategies skip them), evaluates the expectations and the startup, waits for
  the steady state to come back (`recovery_timeout_s`), decides the verdict, and writes it
  all to the journal under `startup_chaos_kit`, credentials masked everywhere.

Every hook fails closed: Chaos Toolkit logs a control's exception at DEBUG and goes on,
so any failure inside the kit's controls, of any type, stops the run itself, with one
line and the verdict `aborted`: before the method nothing runs; during it the run stops
with its rollbacks; the rollbacks themselves are never cut short.

`chaos run` exits 0 only on the verdict the run expects (the configuration's `expect`,
else the extension's), and without an expectation on `reproduced` or `tolerated`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaoslib.configuration import load_configuration
from chaoslib.exceptions import ChaosException, InterruptExecution, InvalidControl
from chaoslib.rollback import run_rollbacks
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.fail_closed import (
    JOURNAL_SECTION,
    fail_the_run,
    failure_line,
    stop_before_the_method,
    stopped_reason,
)
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.redaction import mask_passwords_in_logs, redact_secrets
from chaoskit.kit.settings import RunSettings
from chaoskit.kit.signals import Deferred, deferred_signals, quiet_interrupted_tasks
from chaoskit.targets.database import DatabaseObserver, open_observer, wait_until_sessions_left
from chaoskit.targets.deployment import deployment_target
from chaoskit.targets.gcp.access import staging_access_problems
from chaoskit.testbed.state import target_lock_path
from chaoskit.verification.configuration import check_expect, settle_configuration
from chaoskit.verification.expectations import evaluate_expectation, outputs_by_activity
from chaoskit.verification.extension import EXTENSION, KitExtension, read_extension
from chaoskit.verification.figures import capacity_at_rest, run_figures
from chaoskit.verification.guardrails import check_guardrails, effective_limits
from chaoskit.verification.recovery import wait_for_recovery
from chaoskit.verification.stop_conditions import (
    StopConditions,
    arm_stop_conditions,
    layered_stop_conditions,
)
from chaoskit.verification.supervision import RunSupervisor
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
    "after_rollback_control",
    "before_experiment_control",
    "before_method_control",
    "before_rollback_control",
    "validate_control",
]

JOURNAL_KEY = JOURNAL_SECTION
_RUN_KEY = "_startup_chaos_kit_run"  # per-run state; added after the journal copied the experiment
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
    supervisor: RunSupervisor = field(default_factory=RunSupervisor)
    sampler: TimelineSampler | None = None
    observer: DatabaseObserver | None = None
    lock: TargetLock | None = None
    stop_conditions: StopConditions | None = None
    method_started: bool = False
    capacity: dict[str, Any] = field(default_factory=dict)


def _setting(run: _RunState, configuration: Configuration | None, key: str) -> float:
    """The experiment's own (its extension's), else the configuration's."""
    if key in run.extension.settings:
        return run.extension.settings[key]
    return float(RunSettings.of(configuration).value(key))


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


@contextlib.contextmanager
def _part(name: str) -> Iterator[None]:
    """A failure of any type inside, as a KitError naming the kit's part `name`."""
    try:
        yield
    except (KitError, ChaosException):
        raise
    except Exception as error:  # noqa: BLE001 - fail closed, whatever it was
        raise KitError(f"the kit's {name} failed ({failure_line(error)}): nothing ran") from None


def _check_the_run(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets | None,
    activities: bool = True,
) -> tuple[KitExtension, dict[str, Any]]:
    """What `chaos validate` and a run check alike before anything runs: the
    configuration settled, the extension, the guardrails' limits and (with `activities`:
    a run, which knows its var-files and environment) every activity against them;
    returns the extension and the limits. KitError names the first fault."""
    with _part("configuration"):
        # validation is of the file alone: no var-file's value, no environment's
        alone: dict[str, Any] = {"variables": {}, "environment": False}
        settings = settle_configuration(experiment, configuration, **({} if activities else alone))
    with _part("extension"):
        extension = read_extension(experiment)
        # the experiment's own conditions join the configuration's: one name, one condition
        where = f"stop_conditions with extensions.{EXTENSION}.stop_conditions"
        layered_stop_conditions(settings.stop_conditions, extension.stop_conditions, where=where)
    with _part("guardrails"):
        if not activities:
            return extension, effective_limits(configuration, extension.guardrails)
        limits = check_guardrails(experiment, configuration, secrets, extension.guardrails)
    return extension, limits


def _file_configuration(experiment: Experiment) -> Configuration:
    """The configuration the experiment file gives itself: its values, and its defaults
    for what the environment may set (validation does not depend on the environment)."""
    configuration: Configuration = {}
    for key, value in (experiment.get("configuration") or {}).items():
        if isinstance(value, dict) and value.get("type") == "env":
            configuration[key] = value.get("default")
        elif not (isinstance(value, dict) and "type" in value):  # not a dynamic probe
            configuration[key] = value
    return configuration


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate` (and `chaos run` before it starts): refuse in one line what a
    run would refuse for the file's own sake (its configuration's values, the extension,
    the guardrails' limits), with the checks the run makes, touching nothing. What a
    var-file may change (an activity's count against a raised limit) is checked when the
    run starts."""
    experiment = _experiment_being_validated()
    if experiment is None:
        return
    try:
        _check_the_run(experiment, _file_configuration(experiment), None, activities=False)
        # the expectation CHAOS_EXPECT sets, as a run would read it
        check_expect(experiment, load_configuration(experiment.get("configuration") or {}), {})
    except (KitError, ChaosException) as error:
        raise InvalidControl(str(error)) from None
    except Exception as error:  # noqa: BLE001 - fail closed: never valid by accident
        raise InvalidControl(
            f"the kit could not validate the experiment ({failure_line(error)})"
        ) from None


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
    try:
        with _part("trace endpoint check"):
            check_trace_endpoint()
        run.extension, run.limits = _check_the_run(experiment, configuration, secrets)
        with _part("target check"):
            target = deployment_target(configuration)
            watching = layered_stop_conditions(
                RunSettings.of(configuration).stop_conditions, run.extension.stop_conditions
            )
            if target == "staging" and (
                problems := staging_access_problems(configuration, secrets, experiment, watching)
            ):
                raise KitError("staging is not ready: " + "; ".join(problems))
        with _part("target lock"):
            lock = TargetLock(target_lock_path(target), f"chaos run of {experiment.get('title')!r}")
            if lock.acquire():  # a game day of this very process holds it otherwise
                run.lock = lock
    except (KitError, ChaosException) as refusal:
        run.refusal = str(refusal)
    if run.refusal is not None:
        stop_before_the_method(experiment, run.refusal)
    RunSettings.provide(configuration, {"run_started_at": time.time()})


def before_method_control(
    context: Experiment,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **kwargs: Any,
) -> None:
    experiment = context
    run: _RunState | None = experiment.get(_RUN_KEY)
    if run is None:  # the kit never checked this run: it does not go on unguarded
        stop_before_the_method(
            experiment, "the kit's guardrails were not checked before the method: nothing ran"
        )
    configuration = configuration if configuration is not None else {}
    supervisor = run.supervisor
    part = "database observer"  # what is being armed, for a failure's line
    try:
        _observe_database(run, configuration)
        part = "capacity reading"
        run.capacity = capacity_at_rest(configuration)
        part = "timeline sampler"
        interval = _setting(run, configuration, "sample_interval_s")
        run.sampler = TimelineSampler(
            configuration, interval, on_failure=lambda e: supervisor.fail("timeline sampler", e)
        )
        run.sampler.start()
        part = "stop conditions"
        run.stop_conditions = arm_stop_conditions(
            experiment,
            configuration,
            secrets,
            run.extension.stop_conditions,
            on_failure=supervisor.fail,
            on_breach=supervisor.interrupt,
        )
        run.stop_conditions.start(experiment, configuration, secrets)
        part = "interruption handling"
        supervisor.relay_signals()
        part = "watchdog"
        # from the method's start: how long a testbed takes to come up never counts
        failed = supervisor.begin_method(float(run.limits["max_run_duration_s"]))
    except Exception as error:  # noqa: BLE001 - fail closed, whatever it was
        failed = f"the kit's {part} failed ({failure_line(error)}): nothing ran"
    if failed is not None:
        _stand_down(run)
        stop_before_the_method(experiment, failed)
    run.method_started = True


def _observe_database(run: _RunState, configuration: Configuration) -> None:
    """The one connection the run observes the database through; the method starts once
    the steady state's throwaway instances have left (the same sessions every run)."""
    dsn = RunSettings.of(configuration).admin_database_url
    if not dsn:
        return
    try:
        run.observer = open_observer(dsn)
        if not wait_until_sessions_left(dsn, _THROWAWAY_PREFIX):
            logger.warning("Throwaway instances of the steady state still hold sessions")
    except KitError as error:  # the observations say unobserved; the safety nets still run
        logger.warning(f"The kit cannot observe the database: {error}")


def after_method_control(context: Experiment, **kwargs: Any) -> None:
    run: _RunState | None = context.get(_RUN_KEY)
    if run is None:
        return
    try:
        run.supervisor.end_method()
        if run.stop_conditions is not None:
            run.stop_conditions.disarm()  # they watch the method only
    except Exception as error:  # noqa: BLE001 - fail closed: the rollbacks come next
        reason = run.supervisor.fail("stand-down after the method", error, say=False)
        raise InterruptExecution(reason) from None


def before_rollback_control(context: Experiment, **kwargs: Any) -> None:
    """Nothing cuts the rollbacks short: not the watchdog, not a stop condition, not a
    first SIGINT or SIGTERM (held until they have all played)."""
    run: _RunState | None = context.get(_RUN_KEY)
    if run is None:
        return
    for part, step in (
        ("watchdog", run.supervisor.end_method),
        ("release of the pressure at the interruption", run.supervisor.wait_for_release),
        ("signal handling during the rollbacks", run.supervisor.hold_signals),
        ("stop conditions", run.stop_conditions and run.stop_conditions.disarm),
    ):
        try:
            if step:
                step()
        except Exception as error:  # noqa: BLE001 - recorded for the verdict; the rollbacks play
            run.supervisor.fail(part, error)


def after_rollback_control(context: Experiment, **kwargs: Any) -> None:
    run: _RunState | None = context.get(_RUN_KEY)
    if run is None:
        return
    try:
        run.supervisor.release_signals()
    except Exception as error:  # noqa: BLE001 - recorded for the verdict
        run.supervisor.fail("signal handling after the rollbacks", error)


def _stand_down(run: _RunState) -> None:
    """Every watcher of the run stopped, each whatever the others do; a failure is
    recorded for the verdict."""
    for part, stop in (
        ("watchdog", run.supervisor.stand_down),
        ("stop conditions", run.stop_conditions and run.stop_conditions.disarm),
        ("timeline sampler", run.sampler and run.sampler.stop),
    ):
        try:
            if stop:
                stop()
        except Exception as error:  # noqa: BLE001 - the next one still stops
            run.supervisor.fail(part, error)


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
    try:
        # a signal now would cost the journal: it is recorded, and the verdict says so
        with deferred_signals() as interrupted:
            _stand_down(run)
            _verify(experiment, journal, run, configuration or {}, secrets, interrupted)
    except Exception as error:  # noqa: BLE001 - Chaos Toolkit would swallow it silently
        line = failure_line(error)
        logger.error(f"The kit could not verify the run: {line}")
        journal[JOURNAL_KEY] = redact_secrets(
            {"verdict": "error", "reason": f"verification failed: {line}"}
        )
        journal["status"] = "failed"
    finally:
        _release(run, journal)


def _release(run: _RunState, journal: Journal) -> None:
    """The run's observer connection closed and its target's lock released, each
    whatever the other does; a failure is one line and fails the run."""
    observer = run.observer
    for part, release in (
        ("database observer", observer and (lambda: _close_observer(observer))),
        ("target lock", run.lock and run.lock.release),
    ):
        try:
            if release:
                release()
        except Exception as error:  # noqa: BLE001 - never a silent leak
            reason = f"the kit's {part} could not be released: {failure_line(error)}"
            logger.error(reason)
            fail_the_run(journal, reason)


def _close_observer(observer: DatabaseObserver) -> None:
    registry.unregister(observer.kind, observer.name)
    observer.stop()


def _probe_output(output: Any) -> str:
    """A probe's output in a line: an HTTP probe's status, a process's exit code, else
    the value (cut)."""
    if isinstance(output, dict) and "status" in output:
        if "headers" in output:
            return f"HTTP {output['status']}"
        if "stdout" in output:
            return f"exit code {output['status']}"
    return shown(output, 120)


def _stopped_reason(breach: dict[str, Any]) -> str:
    sample = breach["sample"]
    if "tolerance" in sample:  # a team's own probe
        return (
            f"stopped by the stop condition {breach['condition']}: its probe returned "
            f"{_probe_output(sample.get('value'))}, outside its tolerance "
            f"{shown(sample.get('tolerance'))}"
        )
    details = {
        k: v
        for k, v in sample.items()
        if k not in ("condition", "status", "value", "threshold", "url") and v is not None
    }
    listed = ", ".join(f"{k}={v}" for k, v in details.items())
    return (
        f"stopped by the stop condition {breach['condition']}: {sample.get('value')} "
        f"above {sample.get('threshold')} ({listed})"
    )


def _verify(
    experiment: Experiment,
    journal: Journal,
    run: _RunState,
    configuration: Configuration,
    secrets: Secrets | None,
    interrupted: Deferred,
) -> None:
    supervisor = run.supervisor
    interruption = supervisor.interruption
    section: dict[str, Any] = {"guardrails": {"limits": run.limits, "refused": run.refusal}}
    if run.stop_conditions is not None:
        section["stop_conditions"] = run.stop_conditions.journal()
        breach = section["stop_conditions"]["stopped_by"]
        if breach is not None:
            interruption = _stopped_reason(breach)
            # as chaostoolkit-addons' safeguard control records it
            journal["safeguards"] = run.stop_conditions.safeguards_record()
    if supervisor.rollback_signal is not None:
        held = supervisor.rollback_signal
        interruption = interruption or f"interrupted by {held} during the rollbacks"
        interrupted.event.set()  # the user wants it over: no waiting for the recovery
        journal["status"] = "interrupted"
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
            timeout_s = _setting(run, configuration, "recovery_timeout_s")
            recovery = wait_for_recovery(
                experiment, configuration, secrets, timeout_s, interrupted.event
            )
    if run.sampler is not None:
        section["timeline"] = run.sampler.stop()
    if interrupted.received and interruption is None:
        interruption = f"interrupted by {interrupted.received} during the verification"
        journal["status"] = "interrupted"
    # a refusal, then a control's stop or failure, then an interruption: the first cause
    stopped = run.refusal or stopped_reason(experiment) or supervisor.failure or interruption
    verdict, reason = decide_verdict(
        journal,
        expectations,
        startup,
        recovery,
        stopped,
        dry=bool(experiment.get("dry")),
    )
    # a run refused before its configuration settled is still said in its journal
    settings = RunSettings.of(configuration, readable=run.refusal is not None)
    expected = expected_verdict(settings.expect, run.extension.expect)
    section.update(
        # what recommendations are computed from: the run's figures and the capacity
        # the method started with
        figures=run_figures(configuration),
        capacity=run.capacity,
        # what the report reads the numbers by: the target, and the phase that opens the pool
        target=settings.target,
        database_phase=settings.database_phase,
        interrupted_by=interrupted.received or supervisor.rollback_signal,
        released_at_interruption=supervisor.released,
        baseline_reset=settings.baseline_reset,
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
