"""Stop conditions: while the method runs, the kit samples the long-running service's
golden path (and on staging Cloud SQL's CPU) as chaostoolkit-addons safeguards; when one
is breached the run stops at once, its rollbacks are played, and the verdict is
`aborted` with the condition and the values that breached it.

Guardrails are static and checked before the run (how many connections, how long, which
targets); stop conditions watch the system while the run goes on. The thresholds are
the configuration's `stop_conditions` (a profile sets them; `null` turns one off):

    error_rate_pct            5      the golden path's failed requests, in percent
    latency_pct_of_baseline   200    its median response time against the baseline
                                     measured just before the method
    latency_floor_ms          0      ...and only this many ms above the baseline (the
                                     embedded profile: 250, loopback's 2 ms doubles alone)
    pool_pct                  90     connections the service holds over its pool's most
    cpu_pct                   80     Cloud SQL's CPU, above it for all of `cpu_window_s`
    cpu_window_s              300
    every_s                   5      seconds between two samples of each condition
    requests                  10     requests per sample of the golden path

These are the incident's staging strategy's alert thresholds. The experiments' own
pressure (the database's connections, the connector's queue) is never a stop condition:
it is what they apply on purpose. An experiment whose method takes the golden path down
on purpose (a database restart) turns that condition off in its extension's
`stop_conditions`, over the profile's.

The sampling fails closed: a sample that raises, or a sampler that ends before it is
disarmed, is handed to the run's `on_failure` (the run stops with its rollbacks), never
a stop condition quietly gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chaosaddons.controls.safeguards import (
    Guardian,
    execute_activity,
    interrupt_experiment_on_unhealthy_probe,
)
from chaoslib.types import Configuration, Experiment, Probe, Secrets

from chaoskit.kit.documents import json_text
from chaoskit.kit.errors import KitError, shown
from chaoskit.probes.stop_conditions import golden_path_baseline_ms
from chaoskit.targets.deployment import on_staging
from chaoskit.targets.gcp.api import gcp_seconds

__all__ = [
    "DEFAULTS",
    "StopConditions",
    "arm_stop_conditions",
    "check_stop_conditions",
    "settle_stop_conditions",
]

DEFAULTS: dict[str, float | int | None] = {
    "error_rate_pct": 5.0,
    "latency_pct_of_baseline": 200.0,
    "latency_floor_ms": 0.0,
    "pool_pct": 90.0,
    "cpu_pct": 80.0,
    "cpu_window_s": 300.0,
    "every_s": 5.0,
    "requests": 10,
}
_MODULE = "chaoskit.probes.stop_conditions"
# a probe's status: `unobserved` (nothing to judge by) is never a reason to stop
_TOLERANCE = {"type": "regex", "target": "status", "pattern": "^(within|unobserved)$"}
# what each threshold may be: a value outside is refused before anything runs
_RANGES = {
    "error_rate_pct": (0.0, 100.0, "a percentage"),
    "latency_pct_of_baseline": (0.0, 100_000.0, "a percentage of the baseline"),
    "latency_floor_ms": (0.0, 3_600_000.0, "milliseconds"),
    "pool_pct": (0.0, 100.0, "a percentage"),
    "cpu_pct": (0.0, 100.0, "a percentage"),
    "cpu_window_s": (0.0, 86_400.0, "seconds"),
    "every_s": (0.1, 3_600.0, "seconds"),
    "requests": (1, 100, "a whole number"),
}


def check_stop_conditions(given: Any, where: str = "stop_conditions") -> dict[str, Any]:
    """`given` checked (an object of thresholds, `null` turning one off); KitError names
    the first value that cannot be used, as `<where>.<key>`."""
    if not isinstance(given, dict):
        raise KitError(
            f"{where}: {shown(given)} is not an object: give e.g. "
            '{"error_rate_pct": 5, "cpu_pct": null}'
        )
    for key, value in given.items():
        if key not in DEFAULTS:
            raise KitError(
                f"{where}.{key} is not a stop condition: give one of " + ", ".join(DEFAULTS)
            )
        required = key in ("every_s", "requests", "cpu_window_s", "latency_floor_ms")
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            off = "" if required else " (null turns it off)"
            raise KitError(f"{where}.{key}: {shown(value)} is not a number: give e.g. "
                           f"{DEFAULTS[key]}{off}")  # fmt: skip
        low, high, unit = _RANGES[key]
        if (
            not math.isfinite(value)
            or not low <= value <= high
            or (key == "requests" and not isinstance(value, int))
        ):
            raise KitError(f"{where}.{key}: {shown(value)} is out of range: give {unit} "
                           f"from {low:g} to {high:g}")  # fmt: skip
    return dict(given)


def settle_stop_conditions(
    configuration: Configuration, profile: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run's thresholds: the configuration's `stop_conditions` (a JSON text from
    CHAOS_STOP_CONDITIONS is read) over the `profile`'s, over the defaults, checked, set
    in `configuration`; KitError names the first value that cannot be used."""
    given = json_text(configuration.get("stop_conditions"),
                      "stop_conditions (CHAOS_STOP_CONDITIONS)",
                      'give an object such as {"error_rate_pct": 5}')  # fmt: skip
    given = check_stop_conditions({} if given is None else given)
    settled = {**DEFAULTS, **(profile or {}), **given}
    configuration["stop_conditions"] = settled
    return settled


def _probe(name: str, func: str, every_s: float, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "probe",
        "provider": {"type": "python", "module": _MODULE, "func": func, "arguments": arguments},
        "frequency": every_s,
        "tolerance": dict(_TOLERANCE),
    }


class _SupervisedGuardian(Guardian):
    """chaostoolkit-addons' guardian, supervised: a breach interrupts through `on_breach`
    (the kit's, which never cuts the rollbacks short), and a sampler that raises (its
    probe failed, its tolerance could not be judged) or ends before it is disarmed is
    handed to `on_failure`. The kit's conditions are all sampled every `frequency`."""

    def __init__(
        self,
        on_failure: Callable[[str, BaseException], object],
        on_breach: Callable[[], object],
    ) -> None:
        super().__init__()
        self._on_failure = on_failure
        self._on_breach = on_breach

    def run(
        self,
        experiment: Experiment,
        probes: list[Probe],
        configuration: Configuration,
        secrets: Secrets,
        settings: dict[str, Any],
    ) -> None:
        self.interrupter.start()
        for probe in probes:
            future = self.repeating.submit(self._sample, experiment, probe, configuration, secrets)
            future.add_done_callback(partial(self._finished, probe=probe))

    def _sample(
        self, experiment: Experiment, probe: Probe, configuration: Configuration, secrets: Secrets
    ) -> None:
        while not self.repeating_until.is_set():
            run = execute_activity(experiment=experiment, probe=probe,
                                   configuration=configuration, secrets=secrets)  # fmt: skip
            if run.get("status") != "succeeded":
                raise KitError("".join(run.get("exception") or ["no sample"]).strip())
            self.repeating_until.wait(timeout=probe["frequency"])
            if not self.repeating_until.is_set():
                interrupt_experiment_on_unhealthy_probe(self, probe, run, configuration, secrets)

    def _finished(self, future: Future, probe: Probe) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None and self.repeating_until.is_set():
            return  # disarmed
        self._on_failure(
            f"stop condition {probe['name']}", error or RuntimeError("it stopped sampling")
        )

    def _exit(self) -> None:
        self._on_breach()


@dataclass
class StopConditions:
    """The conditions armed for one run (`armed`: their safeguard probes), those that
    are not and why (`not_armed`), and the guardian sampling them."""

    armed: list[dict[str, Any]] = field(default_factory=list)
    not_armed: dict[str, str] = field(default_factory=dict)
    guardian: Guardian | None = None

    def start(self, experiment: Experiment, configuration: Configuration, secrets: Secrets) -> None:
        """Start sampling in the background (the guardian's threads)."""
        if self.guardian is not None:
            self.guardian.run(experiment, self.armed, configuration, secrets or {}, {})

    def disarm(self) -> None:
        """Stop sampling; waits for a sample under way (each is bounded by its timeout).
        Should the guardian fail to terminate, its samplers are still told to stop."""
        guardian = self.guardian
        if guardian is None:
            return
        try:
            guardian.terminate()
        finally:
            guardian.repeating_until.set()
            guardian.wait_for_interruption.set()

    def breach(self) -> dict[str, Any] | None:
        """What stopped the run: the condition, its sample and when; None if nothing."""
        guardian = self.guardian
        if guardian is None or not guardian.was_triggered:
            return None
        run = guardian.triggered_by_run or {}
        output = run.get("output") or {}
        return {"probe": guardian.triggered_by, "condition": output.get("condition"),
                "at": run.get("end"), "sample": output}  # fmt: skip

    def safeguards_record(self) -> dict[str, Any]:
        """The breach as chaostoolkit-addons' safeguard control records it in a journal."""
        assert self.guardian is not None
        return {"triggered_by": self.guardian.triggered_by, "run": self.guardian.triggered_by_run}

    def journal(self) -> dict[str, Any]:
        """The journal's record: thresholds armed, those not and why, the breach."""
        armed = {p["name"]: p["provider"]["arguments"] for p in self.armed}
        return {"armed": armed, "not_armed": self.not_armed, "stopped_by": self.breach()}


def _planned(
    thresholds: dict[str, Any], configuration: Configuration
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    every_s, requests = float(thresholds["every_s"]), int(thresholds["requests"])
    probes: list[dict[str, Any]] = []
    not_armed: dict[str, str] = {}
    if thresholds["error_rate_pct"] is not None:
        probes.append(_probe("stop-condition-error-rate", "golden_path_error_rate", every_s,
                             {"threshold_pct": thresholds["error_rate_pct"],
                              "requests": requests}))  # fmt: skip
    if thresholds["latency_pct_of_baseline"] is not None:
        baseline_ms = golden_path_baseline_ms(configuration, requests=requests)
        if baseline_ms is None:
            not_armed["latency_pct_of_baseline"] = "no baseline: the golden path did not answer"
        else:
            probes.append(_probe("stop-condition-latency", "golden_path_latency", every_s,
                                 {"baseline_ms": baseline_ms, "requests": requests,
                                  "threshold_pct": thresholds["latency_pct_of_baseline"],
                                  "floor_ms": thresholds["latency_floor_ms"]}))  # fmt: skip
    staging = on_staging(configuration)
    if thresholds["pool_pct"] is not None:
        if staging or not configuration.get("service_application_name"):
            not_armed["pool_pct"] = "the service's pool is visible on the embedded testbed only"
        else:
            probes.append(_probe("stop-condition-pool", "service_pool_held", every_s,
                                 {"threshold_pct": thresholds["pool_pct"]}))  # fmt: skip
    if thresholds["cpu_pct"] is not None:
        if not staging:
            # the testbed's database shares the machine's CPU with the kit and its workers
            not_armed["cpu_pct"] = "Cloud SQL's CPU is read on staging only"
        else:
            probes.append(_probe("stop-condition-cpu", "database_cpu_sustained",
                                 # Monitoring's points are a sampling period apart
                                 max(every_s, gcp_seconds(configuration, "metric_period_s") / 2),
                                 {"threshold_pct": thresholds["cpu_pct"],
                                  "window_s": thresholds["cpu_window_s"]}))  # fmt: skip
    return probes, not_armed


def arm_stop_conditions(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets | None,
    overrides: dict[str, Any] | None,
    on_failure: Callable[[str, BaseException], object],
    on_breach: Callable[[], object],
) -> StopConditions:
    """Take the latency baseline and prepare the run's stop conditions, sampled in the
    background once `start`ed (chaostoolkit-addons' guardian, one per run); a breach
    calls `on_breach` (which interrupts the run, rollbacks played), a sampler that fails
    calls `on_failure(part, error)`. `overrides`: the experiment's own thresholds (its
    extension's `stop_conditions`), over the profile's."""
    profile = configuration.get("stop_conditions") or settle_stop_conditions(configuration)
    thresholds = {**profile, **(overrides or {})}
    probes, not_armed = _planned(thresholds, configuration)
    conditions = StopConditions(armed=probes, not_armed=not_armed)
    if probes:
        conditions.guardian = _SupervisedGuardian(on_failure, on_breach)
        conditions.guardian.prepare(probes)
    return conditions
