"""Recovery: after the rollbacks, is the steady state back, and how fast?"""

from __future__ import annotations

import threading
import time
from typing import Any

from chaoslib.hypothesis import run_steady_state_hypothesis
from chaoslib.types import Configuration, Experiment, Secrets

__all__ = ["wait_for_recovery"]

_RETRY_EVERY_S = 0.5


def wait_for_recovery(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets,
    recovery_timeout_s: float,
    give_up: threading.Event | None = None,
) -> dict[str, Any] | None:
    """Re-run the steady-state probes until they pass, `recovery_timeout_s` passes, or
    `give_up` is set (the run was interrupted meanwhile).

    Returns `{recovered, time_to_recover_s, attempts, recovery_timeout_s}`, or None when
    the experiment declares no steady state.
    """
    give_up = give_up or threading.Event()
    if not (experiment.get("steady-state-hypothesis") or {}).get("probes"):
        return None
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        state = run_steady_state_hypothesis(experiment, configuration, secrets, None, None)
        elapsed = round(time.monotonic() - started, 3)
        if state and state.get("steady_state_met"):
            return {
                "recovered": True,
                "time_to_recover_s": elapsed,
                "attempts": attempts,
                "recovery_timeout_s": recovery_timeout_s,
            }
        if elapsed >= recovery_timeout_s or give_up.is_set():
            return {
                "recovered": False,
                "time_to_recover_s": None,
                "attempts": attempts,
                "recovery_timeout_s": recovery_timeout_s,
            }
        give_up.wait(_RETRY_EVERY_S)
