"""Guardrails: a run that would exceed the blast radius is refused before anything runs.

Limits come from the kit's defaults, then the configuration's `guardrails` object (the
staging profile lowers them), then the experiment's own `guardrails` (to raise one
explicitly). Every activity's arguments are checked with the configuration substituted:
counts and durations against their caps, the database connections it would open against
`max_database_connections`, every number finite, and every database target (in any
form: URLs with a driver, host= parameters, keyword DSNs) against loopback and
`allowed_targets`; so are the system under test's pool figures and the configuration's
database URLs. On staging, an activity with no staging equivalent (it would act on
the embedded testbed instead) is refused too.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from chaoslib import substitute
from chaoslib.types import Configuration, Experiment, Secrets

from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.load_targets import TargetError, check_load_targets
from chaoskit.kit.settings import DAY_S, RunSettings
from chaoskit.targets.deployment import deployment_target, without_staging_equivalent

__all__ = [
    "DEFAULT_LIMITS",
    "GuardrailRefusal",
    "check_guardrails",
    "check_limits",
    "effective_limits",
]

DEFAULT_LIMITS: dict[str, Any] = {
    "max_database_connections": 1000,  # opened by one activity (the flood's cap)
    "max_websocket_connections": 10,
    "max_startups": 200,
    "max_cpu_workers": 64,
    "max_starts": 50,
    "max_pool_size": 200,  # a pool's size, and its overflow, each
    "max_duration_s": 5400.0,  # any one duration argument: the test plan's 90 minutes
    "max_run_duration_s": 5400.0,  # the whole run, enforced while it runs
    "allowed_targets": [],
}
# arguments (and configuration keys) that are counts, and the limit that caps each
_COUNT_CAPS = {
    "startups": "max_startups",
    "workers": "max_cpu_workers",
    "count": "max_starts",
    "pool_size": "max_pool_size",
    "max_overflow": "max_pool_size",
}
_AT_LEAST_ONE = {"connections", "startups", "workers", "count", "pool_size", "samples"}
# the system under test's settings a user can set, checked like an activity's arguments
_SERVICE_KEYS = ("pool_size", "max_overflow")


class GuardrailRefusal(KitError):
    """The run must not start; the message says which limit and how to raise it."""


def _storm_connections(args: Mapping[str, Any]) -> int:
    startups, pool = int(args.get("startups", 0)), int(args.get("pool_size", 10))
    if args.get("shared_pool"):
        return min(startups, pool + int(args.get("max_overflow", 15)))
    return startups * pool


_CONNECTIONS_OPENED: dict[tuple[str, str], Callable[[Mapping[str, Any]], int]] = {
    ("chaoskit.actions.flood", "start_connection_flood"): lambda a: int(a.get("connections", 0)),
    ("chaoskit.actions.database", "start_cpu_pressure"): lambda a: int(a.get("workers", 0)),
    ("chaoskit.actions.database", "start_lock_pressure"): lambda a: 1,
    ("chaoskit.actions.database", "run_acquisition_storm"): _storm_connections,
    ("chaoskit.actions.gcp.cloud_run_flood", "start_cloud_run_flood"): (
        lambda a: int(a.get("connections", 0))
    ),
}


# what each limit may be raised to: counts are whole numbers, durations seconds (a day
# at most: a watchdog of 1e300 s is no watchdog)
_LIMIT_BOUNDS: dict[str, tuple[float, float]] = {
    "max_database_connections": (0, 100_000),
    "max_websocket_connections": (0, 100_000),
    "max_startups": (0, 10_000),
    "max_cpu_workers": (0, 1_024),
    "max_starts": (0, 10_000),
    "max_pool_size": (0, 100_000),
    "max_duration_s": (0, DAY_S),
    "max_run_duration_s": (1, DAY_S),
}


def _limit_problem(key: str, value: Any) -> str | None:
    """Why `value` cannot be the limit `key`, as `<key>: <why and the fix>` (None: it can)."""
    if key == "allowed_targets":
        if not isinstance(value, list):
            return f"{key}: {shown(value)}: give a list of host names"
        for position, host in enumerate(value):
            if not isinstance(host, str) or not host.strip():
                return (
                    f"{key}[{position}]: {shown(host)} is not a host name: give text, "
                    "e.g. db.internal"
                )
        return None
    low, high = _LIMIT_BOUNDS[key]
    seconds = key.endswith("_s")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
        or (not seconds and not float(value).is_integer())
    ):
        what = "seconds" if seconds else "a whole number"
        return f"{key}: {shown(value)}: give {what} from {low:g} to {high:g}"
    return None


def check_limits(source: Any, where: str) -> dict[str, Any]:
    """`source`, an object of limits, checked (one run and `chaos validate` check it
    alike); GuardrailRefusal names the first key or value that cannot be a limit."""
    if source is None:
        return {}
    if not isinstance(source, Mapping):
        raise GuardrailRefusal(
            f"{where}: {shown(source)} is not an object of limits: give e.g. "
            '{"max_database_connections": 150}, or {} for the defaults'
        )
    for key, value in source.items():
        if key not in DEFAULT_LIMITS:
            close = difflib.get_close_matches(str(key), DEFAULT_LIMITS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise GuardrailRefusal(
                f"{where}.{str(key)[:60]}: unknown limit{hint}; known: {', '.join(DEFAULT_LIMITS)}"
            )
        problem = _limit_problem(key, value)
        if problem:
            raise GuardrailRefusal(f"{where}.{problem}")
    return dict(source)


def effective_limits(configuration: Configuration, raised: Mapping[str, Any]) -> dict:
    """The kit's limits, then the configuration's `guardrails`, then the experiment's own
    (`raised`, from its extension); GuardrailRefusal names a malformed limit."""
    limits = dict(DEFAULT_LIMITS)
    given = RunSettings.of(configuration).guardrails
    limits.update(check_limits(given, "configuration guardrails"))
    limits.update(check_limits(raised, "extension guardrails"))
    return limits


def _activities(experiment: Experiment) -> list[dict[str, Any]]:
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    return [
        *(hypothesis.get("probes") or []),
        *(experiment.get("method") or []),
        *(experiment.get("rollbacks") or []),
    ]


def _check_values(values: Mapping[str, Any], limits: dict, refuse: Callable[[str], None]) -> None:
    """Durations and counts against their limits; every number finite."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            refuse(f"{key}={value} is not a finite number: give a real figure")
        if key.endswith("_s"):
            if value < 0:
                refuse(f"{key}={value} is negative: give seconds, 0 or more")
            if value > limits["max_duration_s"]:
                refuse(
                    f"{key}={value} exceeds max_duration_s={limits['max_duration_s']}; raise "
                    "guardrails.max_duration_s in the configuration if you mean it"
                )
        if key in _AT_LEAST_ONE and (not isinstance(value, int) or value < 1):
            refuse(f"{key}={value}: give a whole number, 1 or more")
        cap = _COUNT_CAPS.get(key)
        if cap and value > limits[cap]:
            refuse(f"{key}={value} exceeds {cap}={limits[cap]}; raise guardrails.{cap} to allow it")


def _check_activity(activity: Mapping[str, Any], args: Mapping[str, Any], limits: dict) -> None:
    name = activity.get("name", "?")
    provider = activity.get("provider") or {}

    def refuse(message: str) -> None:
        raise GuardrailRefusal(f"guardrail refused '{name}': {message}")

    _check_values(args, limits, refuse)
    opened = _CONNECTIONS_OPENED.get((provider.get("module"), provider.get("func")))
    if opened is not None:
        try:
            count = opened(args)
        except (TypeError, ValueError):
            refuse("its counts are not whole numbers")
        if count > limits["max_database_connections"]:
            refuse(
                f"it would open {count} database connections, more than "
                f"max_database_connections={limits['max_database_connections']}; raise "
                "guardrails.max_database_connections explicitly to allow it"
            )
    for key, value in args.items():
        try:
            check_load_targets(value, limits["allowed_targets"], key)
        except TargetError as error:
            refuse(str(error))


def _check_staging_equivalents(experiment: Experiment) -> None:
    providers = [activity.get("provider") or {} for activity in _activities(experiment)]
    missing = sorted(
        {
            f"{p.get('module')}.{p.get('func')}"
            for p in providers
            if without_staging_equivalent(p.get("module", ""), p.get("func", ""))
        }
    )
    if missing:
        raise GuardrailRefusal(
            f"guardrail refused the run on staging: {', '.join(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} no staging equivalent (they act on "
            "the embedded testbed); run this experiment on the embedded testbed "
            "(experiments/gameday-staging.toml lists those that run on staging)"
        )


def check_guardrails(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets,
    raised: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the limits applied; raise GuardrailRefusal when the run must not start."""
    limits = effective_limits(configuration, raised)
    try:
        target = deployment_target(configuration)
    except KitError as error:
        raise GuardrailRefusal(f"guardrail refused the run: {error}") from None
    if target == "staging":
        _check_staging_equivalents(experiment)
    settings = RunSettings.of(configuration)

    def refuse_configuration(message: str) -> None:
        raise GuardrailRefusal(f"guardrail refused the configuration: {message}")

    _check_values({key: settings.value(key) for key in _SERVICE_KEYS}, limits, refuse_configuration)
    for key in ("database_url", "direct_database_url", "admin_database_url"):
        try:
            check_load_targets(settings.value(key), limits["allowed_targets"], key)
        except TargetError as error:
            raise GuardrailRefusal(f"guardrail refused configuration {key}: {error}") from None
    for activity in _activities(experiment):
        provider = activity.get("provider") or {}
        args = substitute(provider.get("arguments") or {}, configuration or {}, secrets or {})
        _check_activity(activity, args, limits)
    return limits
