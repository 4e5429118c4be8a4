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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chaosaddons.controls.safeguards import Guardian
from chaoslib.types import Configuration, Experiment, Secrets

from chaoskit.kit.documents import json_text
from chaoskit.kit.errors import KitError
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


def check_stop_conditions(given: Any, where: str = "stop_conditions") -> dict[str, Any]:
    """`given` checked (an object of thresholds, `null` turning one off); KitError names
    the first value that cannot be used, as `<where>.<key>`."""
    if not isinstance(given, dict):
        raise KitError(
            f"{where}: {given!r} is not an object: give e.g. "
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
            raise KitError(f"{where}.{key}: {value!r} is not a number: give e.g. "
                           f"{DEFAULTS[key]}{off}")  # fmt: skip
        if not math.isfinite(value) or value < 0 or (key == "every_s" and value == 0):
            raise KitError(f"{where}.{key}: {value!r} is out of range: give a positive number")
        if key == "requests" and not (isinstance(value, int) and 1 <= value <= 100):
            raise KitError(f"{where}.requests: {value!r}: give a whole number from 1 to 100")
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


@dataclass
class StopConditions:
    """The conditions armed for one run (`armed`: their safeguard probes), those that
    are not and why (`not_armed`), and the guardian sampling them."""

    armed: list[dict[str, Any]] = field(default_factory=list)
    not_armed: dict[str, str] = field(default_factory=dict)
    guardian: Guardian | None = None

    def disarm(self) -> None:
        """Stop sampling; waits for a sample under way (each is bounded by its timeout)."""
        if self.guardian is not None:
            self.guardian.terminate()

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
    overrides: dict[str, Any] | None = None,
) -> StopConditions:
    """Take the latency baseline and start sampling the run's stop conditions in the
    background (chaostoolkit-addons' guardian, one per run); a breach interrupts the run
    as a SIGUSR1 does, rollbacks played. `overrides`: the experiment's own thresholds
    (its extension's `stop_conditions`), over the profile's."""
    profile = configuration.get("stop_conditions") or settle_stop_conditions(configuration)
    thresholds = {**profile, **(overrides or {})}
    probes, not_armed = _planned(thresholds, configuration)
    conditions = StopConditions(armed=probes, not_armed=not_armed)
    if probes:
        conditions.guardian = Guardian()
        conditions.guardian.prepare(probes)
        conditions.guardian.run(experiment, probes, configuration, secrets or {}, {})
    return conditions
