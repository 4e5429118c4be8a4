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

A team's own signals are conditions too, each named, in three lists of the same object:

    probes            {"name", "probe": a Chaos Toolkit probe with its tolerance,
                       "every_s"}: breached when a sample is outside the tolerance (as
                       chaostoolkit-addons' safeguards judge any probe)
    slo_burn_rates    {"name", "slo": projects/P/services/S/serviceLevelObjectives/ID,
                       "threshold", "lookback_s" (300), "every_s"}: breached above the
                       burn rate (chaosgcp's `get_slo_burn_rate` query); staging only
    alert_policies    {"name", "policy": projects/P/alertPolicies/ID, "threshold" (0),
                       "every_s"}: breached above that many open alerts; staging only

A list joins the lists of the layers below it by name (one of the same name replaces
it; `null` clears them). An SLO or an alert policy is read when the conditions are
armed: one that cannot be read (absent, denied) or a policy that is disabled stops the
run before its method; on the embedded testbed they are not armed (Cloud Monitoring
watches staging).

The sampling fails closed: a sample that raises, or a sampler that ends before it is
disarmed, is handed to the run's `on_failure` (the run stops with its rollbacks), never
a stop condition quietly gone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chaosaddons.controls.safeguards import (
    Guardian,
    execute_activity,
    interrupt_experiment_on_unhealthy_probe,
)
from chaoslib.activity import ensure_activity_is_valid
from chaoslib.exceptions import InvalidActivity
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid
from chaoslib.types import Configuration, Experiment, Probe, Secrets

from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.fail_closed import failure_line
from chaoskit.kit.settings import RunSettings
from chaoskit.probes.stop_conditions import golden_path_baseline_ms
from chaoskit.targets.deployment import on_staging
from chaoskit.targets.gcp.monitoring import get_alert_policy, get_service_level_objective

__all__ = [
    "DEFAULTS",
    "Condition",
    "StopConditions",
    "arm_stop_conditions",
    "check_stop_conditions",
    "layered_stop_conditions",
    "settle_stop_conditions",
]

DEFAULTS: dict[str, Any] = {
    "error_rate_pct": 5.0,
    "latency_pct_of_baseline": 200.0,
    "latency_floor_ms": 0.0,
    "pool_pct": 90.0,
    "cpu_pct": 80.0,
    "cpu_window_s": 300.0,
    "every_s": 5.0,
    "requests": 10,
    "probes": [],
    "slo_burn_rates": [],
    "alert_policies": [],
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
# the built-in conditions' safeguard probes, by the condition's name
_BUILT_IN_PROBES = {
    "error_rate_pct": "stop-condition-error-rate",
    "latency_pct_of_baseline": "stop-condition-latency",
    "pool_pct": "stop-condition-pool",
    "cpu_pct": "stop-condition-cpu",
}
_RESERVED = frozenset(DEFAULTS) | frozenset(_BUILT_IN_PROBES.values())
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# the resource a kind watches: its field, the name's form
_RESOURCES = {
    "slo_burn_rates": (
        "slo",
        re.compile(
            r"^projects/[^/]+/services/[^/]+/"
            r"serviceLevelObjectives/[^/]+$"
        ),
        "projects/P/services/S/serviceLevelObjectives/ID",
    ),
    "alert_policies": (
        "policy",
        re.compile(r"^projects/[^/]+/alertPolicies/[^/]+$"),
        "projects/P/alertPolicies/ID",
    ),
}
# a team's own conditions, by kind: each entry's fields (the required first), and an example
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "probes": (
        ("name", "probe"),
        ("every_s",),
        '{"name": "checkout-errors", "probe": {"type": "probe", "name": "checkout", '
        '"provider": {"type": "http", "url": "https://..."}, "tolerance": 200}}',
    ),
    "slo_burn_rates": (
        ("name", "slo", "threshold"),
        ("lookback_s", "every_s"),
        '{"name": "checkout-slo", "slo": "projects/P/services/S/'
        'serviceLevelObjectives/ID", "threshold": 10}',
    ),
    "alert_policies": (
        ("name", "policy"),
        ("threshold", "every_s"),
        '{"name": "database-alert", "policy": "projects/P/alertPolicies/ID"}',
    ),
}
# what each kind's fields may be: (low, high, unit, whole)
_FIELD_RANGES = {
    ("slo_burn_rates", "threshold"): (0.0, 100_000.0, "a burn rate", False),
    ("slo_burn_rates", "lookback_s"): (0.001, 2_592_000.0, "seconds", False),
    ("alert_policies", "threshold"): (0, 1000, "a whole number of open alerts", True),
}
_LOOKBACK_S = 300.0  # chaosgcp's `get_slo_burn_rate` default
_NOT_ON_THE_TESTBED = "Cloud Monitoring watches staging: not on the embedded testbed"


def _number(
    value: Any,
    where: str,
    low: float,
    high: float,
    unit: str,
    whole: bool,
    example: Any,
    off: str = "",
) -> float | int:
    """`value` checked: a number (a whole one if `whole`), finite, from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KitError(f"{where}: {shown(value)} is not a number: give e.g. {example}{off}")
    if not math.isfinite(value):
        raise KitError(
            f"{where}: {shown(value)} is not a finite number: give {unit} from {low:g} to {high:g}"
        )
    if not low <= value <= high or (whole and not isinstance(value, int)):
        raise KitError(
            f"{where}: {shown(value)} is out of range: give {unit} from {low:g} to {high:g}"
        )
    return value


def _check_probe(probe: Any, where: str) -> None:
    """A Chaos Toolkit probe with a tolerance, as chaostoolkit-addons' safeguards take
    one, checked by chaoslib's own rules."""
    if not isinstance(probe, dict):
        raise KitError(
            f"{where}: {shown(probe)} is not a Chaos Toolkit probe: give an object "
            'such as {"type": "probe", "name": "...", "provider": {...}, '
            '"tolerance": ...}'
        )
    if "ref" in probe:
        raise KitError(f"{where}.ref: give the probe itself, not a reference to one")
    for key in ("frequency", "background"):
        if key in probe:
            raise KitError(
                f"{where}.{key}: the kit samples the probe every every_s: give "
                "every_s beside the probe"
            )
    if probe.get("type") != "probe":
        raise KitError(
            f'{where}.type: {shown(probe.get("type"))}: give "probe" (a stop '
            "condition observes, it never acts)"
        )
    if "tolerance" not in probe:
        raise KitError(
            f"{where}.tolerance is missing: say what is within, e.g. 200 for an "
            "HTTP probe's status, or a range, a regex, a jsonpath"
        )
    if not isinstance(probe.get("provider"), dict):
        raise KitError(
            f"{where}.provider: {shown(probe.get('provider'))} is not an object: "
            "give a Chaos Toolkit provider (python, http or process)"
        )
    try:
        ensure_activity_is_valid(probe)
        ensure_hypothesis_tolerance_is_valid(probe["tolerance"])
    except InvalidActivity as error:
        raise KitError(f"{where}: {' '.join(str(error).split())}") from None
    except Exception as error:  # noqa: BLE001 - any fault in it is the declaration's
        raise KitError(f"{where}: not a valid probe ({failure_line(error)})") from None


def _check_entry(kind: str, entry: Any, where: str) -> dict[str, Any]:
    required, optional, example = _KINDS[kind]
    if not isinstance(entry, dict):
        raise KitError(f"{where}: {shown(entry)} is not an object: give e.g. {example}")
    for key in entry:
        if key not in required + optional:
            raise KitError(
                f"{where}.{key} is not a field of {kind}: give " + ", ".join(required + optional)
            )
    for key in required:
        if key not in entry:
            raise KitError(f"{where}.{key} is missing: give e.g. {example}")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise KitError(
            f"{where}.name: {shown(name)}: give a name of letters, digits, "
            "'-', '_' or '.', at most 63"
        )
    if name in _RESERVED:
        raise KitError(f"{where}.name: {name!r} is a built-in condition's name: give another")
    if "every_s" in entry:
        low, high, unit = _RANGES["every_s"]
        _number(entry["every_s"], f"{where}.every_s", low, high, unit, False, 10)
    for (of, key), (low, high, unit, whole) in _FIELD_RANGES.items():
        if of == kind and key in entry:
            _number(entry[key], f"{where}.{key}", low, high, unit, whole, high if whole else 10)
    if kind == "probes":
        _check_probe(entry["probe"], f"{where}.probe")
    if kind in _RESOURCES:
        key, pattern, form = _RESOURCES[kind]
        if not isinstance(entry[key], str) or not pattern.match(entry[key]):
            raise KitError(
                f"{where}.{key}: {shown(entry[key])} is not a resource name: give {form}"
            )
    return dict(entry)


def _unique_names(conditions: dict[str, Any], where: str) -> None:
    """Each of a team's conditions has a name of its own, across the kinds."""
    seen: dict[str, str] = {}
    for kind in _KINDS:
        for position, entry in enumerate(conditions.get(kind) or []):
            name = entry["name"]
            if seen.get(name) == kind:
                raise KitError(
                    f"{where}.{kind}[{position}].name: {name!r} is declared twice: "
                    "give each condition its own name"
                )
            if name in seen:
                raise KitError(
                    f"{where}: {name!r} names a condition in {seen[name]} and one in "
                    f"{kind}: give each condition its own name"
                )
            seen[name] = kind


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
        if key in _KINDS:
            if value is not None and not isinstance(value, list):
                raise KitError(
                    f"{where}.{key}: {shown(value)} is not a list: give e.g. "
                    f"[{_KINDS[key][2]}] (null: none)"
                )
            for position, entry in enumerate(value or []):
                _check_entry(key, entry, f"{where}.{key}[{position}]")
            continue
        required = key in ("every_s", "requests", "cpu_window_s", "latency_floor_ms")
        if value is None and not required:
            continue
        low, high, unit = _RANGES[key]
        _number(
            value,
            f"{where}.{key}",
            low,
            high,
            unit,
            key == "requests",
            DEFAULTS[key],
            "" if required else " (null turns it off)",
        )
    _unique_names(given, where)
    return dict(given)


def layered_stop_conditions(
    *layers: dict[str, Any] | None, where: str = "stop_conditions"
) -> dict[str, Any]:
    """Each layer (checked) over those before it: a threshold replaces the one below; a
    list of a team's conditions joins those below by name, `null` clearing them.
    KitError when two kinds end up with conditions of one name."""
    layered: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key in _KINDS and value is not None:
                joined = {entry["name"]: entry for entry in layered.get(key) or []}
                joined.update({entry["name"]: entry for entry in value})
                layered[key] = list(joined.values())
            else:
                layered[key] = value
    _unique_names(layered, where)
    return layered


def settle_stop_conditions(
    configuration: Configuration, profile: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run's thresholds: the configuration's `stop_conditions` (CHAOS_STOP_CONDITIONS
    as JSON) over the `profile`'s, over the defaults, checked, set in `configuration`;
    KitError names the first value that cannot be used."""
    given = RunSettings.of(configuration).stop_conditions
    given = check_stop_conditions({} if given is None else given)
    settled = layered_stop_conditions(DEFAULTS, profile, given)
    RunSettings.provide(configuration, {"stop_conditions": settled})
    return settled


def _probe(
    name: str, func: str, every_s: float, arguments: dict[str, Any], google: bool = False
) -> dict[str, Any]:
    provider = {"type": "python", "module": _MODULE, "func": func, "arguments": arguments}
    if google:  # the experiment's `secrets.gcp`, when it declares them, else the ADC
        provider["secrets"] = ["gcp"]
    return {
        "name": name,
        "type": "probe",
        "provider": provider,
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
            run = execute_activity(
                experiment=experiment, probe=probe, configuration=configuration, secrets=secrets
            )
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
class Condition:
    """One armed condition: its name (a built-in's key or the team's own), the safeguard
    probe sampling it, what the journal keeps of it, and, for a team's own probe, the
    tolerance its samples are judged by (the kit's probes judge their own)."""

    name: str
    probe: dict[str, Any]
    record: dict[str, Any]
    tolerance: Any = None

    def sample(self, output: Any) -> dict[str, Any]:
        """A sample as the journal keeps it: the kit's probes' own judgement, or a team's
        probe's output with the tolerance it fell outside."""
        if self.tolerance is None:
            return output if isinstance(output, dict) else {"value": output}
        return {
            "condition": self.name,
            "status": "breached",
            "value": output,
            "tolerance": self.tolerance,
        }


@dataclass
class StopConditions:
    """The conditions armed for one run (`armed`), those that are not and why
    (`not_armed`), and the guardian sampling them."""

    armed: list[Condition] = field(default_factory=list)
    not_armed: dict[str, str] = field(default_factory=dict)
    guardian: Guardian | None = None

    def start(self, experiment: Experiment, configuration: Configuration, secrets: Secrets) -> None:
        """Start sampling in the background (the guardian's threads)."""
        if self.guardian is not None:
            probes = [c.probe for c in self.armed]
            self.guardian.run(experiment, probes, configuration, secrets or {}, {})

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
        condition = next(c for c in self.armed if c.probe["name"] == guardian.triggered_by)
        return {
            "probe": guardian.triggered_by,
            "condition": condition.name,
            "at": run.get("end"),
            "sample": condition.sample(run.get("output")),
        }

    def safeguards_record(self) -> dict[str, Any]:
        """The breach as chaostoolkit-addons' safeguard control records it in a journal."""
        assert self.guardian is not None
        return {"triggered_by": self.guardian.triggered_by, "run": self.guardian.triggered_by_run}

    def journal(self) -> dict[str, Any]:
        """The journal's record, by condition: those armed (their thresholds), those not
        and why, the breach."""
        armed = {c.name: c.record for c in self.armed}
        return {"armed": armed, "not_armed": self.not_armed, "stopped_by": self.breach()}


def _built_in(
    name: str, func: str, every_s: float, arguments: dict[str, Any], google: bool = False
) -> Condition:
    probe = _probe(_BUILT_IN_PROBES[name], func, every_s, arguments, google)
    return Condition(name, probe, arguments)


def _own_probes(entries: Iterable[dict[str, Any]], every_s: float) -> list[Condition]:
    """A team's probes, each sampled as a safeguard under the condition's name."""
    conditions = []
    for entry in entries:
        every = float(entry.get("every_s", every_s))
        probe = {**entry["probe"], "name": entry["name"], "frequency": every}
        record = {"kind": "probe", "every_s": every, "probe": entry["probe"]}
        conditions.append(Condition(entry["name"], probe, record, entry["probe"]["tolerance"]))
    return conditions


def _armed_or_refused(name: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except KitError as error:
        raise KitError(f"stop condition {name} cannot be armed: {error}") from None


def _monitored(
    thresholds: dict[str, Any],
    every_s: float,
    configuration: Configuration,
    secrets: Secrets | None,
    not_armed: dict[str, str],
) -> list[Condition]:
    """A team's SLOs and alert policies, each read once (it exists, it can be read, an
    alert policy is enabled) and then sampled from Cloud Monitoring; on staging only."""
    entries = [(kind, entry) for kind in _RESOURCES for entry in thresholds.get(kind) or []]
    if not on_staging(configuration):
        not_armed.update({entry["name"]: _NOT_ON_THE_TESTBED for _, entry in entries})
        return []
    # Monitoring's points are a sampling period apart
    floor_s = RunSettings.of(configuration).gcp.metric_period_s / 2
    conditions = []
    for kind, entry in entries:
        name, every = entry["name"], max(float(entry.get("every_s", every_s)), floor_s)
        if kind == "slo_burn_rates":
            slo = _armed_or_refused(
                name, lambda e=entry: get_service_level_objective(e["slo"], configuration, secrets)
            )
            arguments = {
                "slo": entry["slo"],
                "threshold": entry["threshold"],
                "lookback_s": entry.get("lookback_s", _LOOKBACK_S),
            }
            record = {
                "kind": "slo_burn_rate",
                **arguments,
                "every_s": every,
                "goal": slo.get("goal"),
                "display_name": slo.get("displayName"),
            }
            probe = _probe(name, "slo_burn_rate", every, arguments, google=True)
            conditions.append(Condition(name, probe, record))
            continue
        policy = _armed_or_refused(
            name, lambda e=entry: get_alert_policy(e["policy"], configuration, secrets)
        )
        if policy.get("enabled") is False:
            raise KitError(
                f"stop condition {name} cannot be armed: alert policy "
                f"{entry['policy']} is disabled, so it opens no alerts: enable it, "
                "or remove the condition"
            )
        arguments = {"policy": entry["policy"], "threshold": entry.get("threshold", 0)}
        record = {
            "kind": "alert_policy",
            **arguments,
            "every_s": every,
            "display_name": policy.get("displayName"),
        }
        probe = _probe(name, "alert_policy_open", every, arguments, google=True)
        conditions.append(Condition(name, probe, record))
    return conditions


def _planned(
    thresholds: dict[str, Any], configuration: Configuration, secrets: Secrets | None
) -> tuple[list[Condition], dict[str, str]]:
    every_s, requests = float(thresholds["every_s"]), int(thresholds["requests"])
    armed: list[Condition] = []
    not_armed: dict[str, str] = {}
    if thresholds["error_rate_pct"] is not None:
        armed.append(
            _built_in(
                "error_rate_pct",
                "golden_path_error_rate",
                every_s,
                {"threshold_pct": thresholds["error_rate_pct"], "requests": requests},
            )
        )
    if thresholds["latency_pct_of_baseline"] is not None:
        baseline_ms = golden_path_baseline_ms(configuration, requests=requests)
        if baseline_ms is None:
            not_armed["latency_pct_of_baseline"] = "no baseline: the golden path did not answer"
        else:
            armed.append(
                _built_in(
                    "latency_pct_of_baseline",
                    "golden_path_latency",
                    every_s,
                    {
                        "baseline_ms": baseline_ms,
                        "requests": requests,
                        "threshold_pct": thresholds["latency_pct_of_baseline"],
                        "floor_ms": thresholds["latency_floor_ms"],
                    },
                )
            )
    staging = on_staging(configuration)
    if thresholds["pool_pct"] is not None:
        if staging or not RunSettings.of(configuration).service_application_name:
            not_armed["pool_pct"] = "the service's pool is visible on the embedded testbed only"
        else:
            armed.append(
                _built_in(
                    "pool_pct",
                    "service_pool_held",
                    every_s,
                    {"threshold_pct": thresholds["pool_pct"]},
                )
            )
    if thresholds["cpu_pct"] is not None:
        if not staging:
            # the testbed's database shares the machine's CPU with the kit and its workers
            not_armed["cpu_pct"] = "Cloud SQL's CPU is read on staging only"
        else:
            arguments = {
                "threshold_pct": thresholds["cpu_pct"],
                "window_s": thresholds["cpu_window_s"],
            }
            # Monitoring's points are a sampling period apart
            every = max(every_s, RunSettings.of(configuration).gcp.metric_period_s / 2)
            armed.append(
                _built_in("cpu_pct", "database_cpu_sustained", every, arguments, google=True)
            )
    armed += _own_probes(thresholds.get("probes") or [], every_s)
    armed += _monitored(thresholds, every_s, configuration, secrets, not_armed)
    return armed, not_armed


def arm_stop_conditions(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets | None,
    overrides: dict[str, Any] | None,
    on_failure: Callable[[str, BaseException], object],
    on_breach: Callable[[], object],
) -> StopConditions:
    """Take the latency baseline, read the team's SLOs and alert policies, and prepare
    the run's stop conditions, sampled in the background once `start`ed
    (chaostoolkit-addons' guardian, one per run); a breach calls `on_breach` (which
    interrupts the run, rollbacks played), a sampler that fails calls
    `on_failure(part, error)`. `overrides`: the experiment's own (its extension's
    `stop_conditions`), over the profile's. KitError when one cannot be armed."""
    profile = RunSettings.of(configuration).stop_conditions or settle_stop_conditions(configuration)
    thresholds = layered_stop_conditions(profile, overrides)
    armed, not_armed = _planned(thresholds, configuration, secrets)
    conditions = StopConditions(armed=armed, not_armed=not_armed)
    if armed:
        conditions.guardian = _SupervisedGuardian(on_failure, on_breach)
        conditions.guardian.prepare([c.probe for c in armed])
    return conditions
