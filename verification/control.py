"""The kit's Chaos Toolkit control: guardrails before, verification after, a verdict.

Declared first in every experiment's `controls` (before the testbed's), it:

- before the experiment: unfolds the profile's `gcp` settings (see `chaoskit.targets.deployment`),
  checks the expectations are well formed and the guardrails
  hold, or refuses the run (status `interrupted`, nothing touched, nothing to undo);
  arms a watchdog that interrupts the run, rollbacks included, at `max_run_duration_s`;
- before the method: starts sampling the connector and the database for the timeline;
- after the experiment: plays the rollbacks if Chaos Toolkit did not (the `default` and
  `never` strategies skip them), evaluates the expectations, waits for the steady state
  to come back (`recovery_timeout_s`), decides the verdict, and writes it all to the
  journal under `startup_chaos_kit`, with credentials masked everywhere in the journal.

A run whose steady state was not met before the method ends `aborted`; one that did not
recover, or in which an activity failed, ends `failed`: `chaos run` exits non-zero.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import InterruptExecution
from chaoslib.exit import exit_gracefully
from chaoslib.rollback import run_rollbacks
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaoskit.kit.redaction import redact_secrets
from chaoskit.targets.deployment import unfold_gcp_settings
from chaoskit.verification.expectations import ExpectationError, evaluate_expectations
from chaoskit.verification.guardrails import GuardrailRefusal, check_guardrails
from chaoskit.verification.recovery import wait_for_recovery
from chaoskit.verification.timeline import TimelineSampler
from chaoskit.verification.verdict import decide_verdict

__all__ = [
    "EXTENSION",
    "JOURNAL_KEY",
    "after_experiment_control",
    "before_experiment_control",
    "before_method_control",
    "before_rollback_control",
]

EXTENSION = "startup-chaos-kit"
JOURNAL_KEY = "startup_chaos_kit"
_RUN_KEY = "_startup_chaos_kit_run"  # per-run state; added after the journal copied the experiment
_DEFAULT_RECOVERY_TIMEOUT_S = 30.0
_DEFAULT_SAMPLE_INTERVAL_S = 0.5

logger = logging.getLogger("chaostoolkit")


@dataclass
class _RunState:
    extension: dict[str, Any]
    limits: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None
    interruption: str | None = None
    watchdog: threading.Timer | None = None
    sampler: TimelineSampler | None = None
    method_started: bool = False


def _extension(experiment: Experiment) -> dict[str, Any]:
    for entry in experiment.get("extensions") or []:
        if isinstance(entry, dict) and entry.get("name") == EXTENSION:
            return entry
    return {}


def _setting(state: _RunState, configuration: Configuration, key: str, default: float) -> float:
    return float(state.extension.get(key, (configuration or {}).get(key, default)))


def before_experiment_control(
    context: Experiment,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **kwargs: Any,
) -> None:
    experiment = context
    if configuration is not None:
        unfold_gcp_settings(configuration)
    state = _RunState(_extension(experiment))
    experiment[_RUN_KEY] = state
    try:
        expectations = state.extension.get("expectations", [])
        if not isinstance(expectations, list):
            raise ExpectationError("extensions.startup-chaos-kit.expectations must be a list")
        evaluate_expectations(expectations, {"run": []}, configuration)  # shape only
        state.limits = check_guardrails(experiment, configuration, secrets, state.extension)
    except (ExpectationError, GuardrailRefusal) as refusal:
        state.refusal = str(refusal)
        experiment["rollbacks"] = []  # nothing ran, so nothing to undo
        raise InterruptExecution(state.refusal) from None
    max_run_duration_s = float(state.limits["max_run_duration_s"])

    def interrupt() -> None:
        state.interruption = f"interrupted at max_run_duration_s={max_run_duration_s:g}"
        logger.error(f"The run exceeded {max_run_duration_s:g}s: interrupting it, with rollbacks")
        exit_gracefully()

    state.watchdog = threading.Timer(max_run_duration_s, interrupt)
    state.watchdog.daemon = True
    state.watchdog.start()


def before_method_control(
    context: Experiment, configuration: Configuration | None = None, **kwargs: Any
) -> None:
    state: _RunState | None = context.get(_RUN_KEY)
    if state is None:
        return
    state.method_started = True
    interval = _setting(state, configuration, "sample_interval_s", _DEFAULT_SAMPLE_INTERVAL_S)
    state.sampler = TimelineSampler(configuration, interval)
    state.sampler.start()


def before_rollback_control(context: Experiment, **kwargs: Any) -> None:
    state: _RunState | None = context.get(_RUN_KEY)
    if state is not None and state.watchdog is not None:
        state.watchdog.cancel()  # rollbacks are never cut short


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
        _verify(experiment, journal, run, configuration, secrets)
    except Exception as error:  # noqa: BLE001 - Chaos Toolkit would swallow it silently
        logger.error(f"The kit could not verify the run: {type(error).__name__}: {error}")
        journal[JOURNAL_KEY] = redact_secrets(
            {"verdict": "error", "reason": f"verification failed: {type(error).__name__}: {error}"}
        )
        journal["status"] = "failed"


def _verify(
    experiment: Experiment,
    journal: Journal,
    run: _RunState,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> None:
    if run.watchdog is not None:
        run.watchdog.cancel()
    section: dict[str, Any] = {"guardrails": {"limits": run.limits, "refused": run.refusal}}
    recovery = None
    expectations: list[dict[str, Any]] = []
    if run.refusal is None:
        section["rollbacks_forced"] = _play_skipped_rollbacks(
            experiment, journal, configuration, secrets
        )
        if run.method_started:
            expectations = evaluate_expectations(
                run.extension.get("expectations", []), journal, configuration
            )
            timeout_s = _setting(
                run, configuration, "recovery_timeout_s", _DEFAULT_RECOVERY_TIMEOUT_S
            )
            recovery = wait_for_recovery(experiment, configuration, secrets, timeout_s)
    if run.sampler is not None:
        section["timeline"] = run.sampler.stop()
    interruption = run.refusal or run.interruption
    verdict, reason = decide_verdict(journal, expectations, recovery, interruption)
    section.update(
        verdict=verdict,
        reason=reason,
        decided_at=datetime.now(UTC).isoformat(),
        expectations=expectations,
        recovery=recovery,
    )
    if verdict == "aborted" and journal.get("status") != "interrupted":
        journal["status"] = "aborted"
    elif verdict in ("not-recovered", "error"):
        journal["status"] = "failed"
    journal[JOURNAL_KEY] = section
    for key, value in list(journal.items()):
        journal[key] = redact_secrets(value)
    logger.info(f"Verdict: {verdict} ({reason})")
