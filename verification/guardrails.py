"""Guardrails: a run that would exceed the blast radius is refused before anything runs.

Limits come from the kit's defaults, then the configuration's `guardrails` object (the
staging profile lowers them), then the experiment's own `guardrails` (to raise one
explicitly). Every activity's arguments are checked with the configuration substituted:
counts and durations against their caps, the database connections it would open against
`max_database_connections`, and every PostgreSQL URL against loopback and
`allowed_targets`. On staging, an activity with no staging equivalent (it would act on
the embedded testbed instead) is refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from chaoslib import substitute
from chaoslib.types import Configuration, Experiment, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.kit.load_targets import TargetError, check_load_target
from chaoskit.targets.deployment import deployment_target, without_staging_equivalent

__all__ = ["DEFAULT_LIMITS", "GuardrailRefusal", "check_guardrails", "effective_limits"]

DEFAULT_LIMITS: dict[str, Any] = {
    "max_database_connections": 1000,  # opened by one activity (the flood's cap)
    "max_websocket_connections": 10,
    "max_startups": 200,
    "max_cpu_workers": 64,
    "max_starts": 50,
    "max_duration_s": 5400.0,  # any one duration argument: the test plan's 90 minutes
    "max_run_duration_s": 5400.0,  # the whole run, enforced while it runs
    "allowed_targets": [],
}
_COUNT_CAPS = {
    "startups": "max_startups",
    "workers": "max_cpu_workers",
    "count": "max_starts",
}


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
    ("chaoskit.actions.gcp.cloud_run_flood", "start_cloud_run_flood"): lambda a: int(
        a.get("connections", 0)
    ),
}


def effective_limits(configuration: Configuration, raised: Mapping[str, Any]) -> dict:
    """The kit's limits, then the configuration's `guardrails`, then the experiment's own
    (`raised`, from its extension)."""
    limits = dict(DEFAULT_LIMITS)
    for source in ((configuration or {}).get("guardrails"), raised):
        if isinstance(source, Mapping):
            limits.update(source)
    return limits


def _activities(experiment: Experiment) -> list[dict[str, Any]]:
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    return [
        *(hypothesis.get("probes") or []),
        *(experiment.get("method") or []),
        *(experiment.get("rollbacks") or []),
    ]


def _postgres_urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if urlsplit(value).scheme in ("postgres", "postgresql") else []
    if isinstance(value, Mapping):
        return [url for v in value.values() for url in _postgres_urls(v)]
    if isinstance(value, list):
        return [url for v in value for url in _postgres_urls(v)]
    return []


def _check_activity(activity: Mapping[str, Any], args: Mapping[str, Any], limits: dict) -> None:
    name = activity.get("name", "?")
    provider = activity.get("provider") or {}

    def refuse(message: str) -> None:
        raise GuardrailRefusal(f"guardrail refused '{name}': {message}")

    longest = limits["max_duration_s"]
    for key, value in args.items():
        if key.endswith("_s") and isinstance(value, int | float) and value > longest:
            refuse(
                f"{key}={value} exceeds max_duration_s={limits['max_duration_s']}; raise "
                "guardrails.max_duration_s in the configuration if you mean it"
            )
        cap = _COUNT_CAPS.get(key)
        if cap and isinstance(value, int) and value > limits[cap]:
            refuse(f"{key}={value} exceeds {cap}={limits[cap]}; raise guardrails.{cap} to allow it")
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
    for url in _postgres_urls(args):
        try:
            check_load_target(url, limits["allowed_targets"])
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
    for key in ("database_url", "direct_database_url"):
        for url in _postgres_urls((configuration or {}).get(key)):
            try:
                check_load_target(url, limits["allowed_targets"])
            except TargetError as error:
                raise GuardrailRefusal(f"guardrail refused configuration {key}: {error}") from None
    for activity in _activities(experiment):
        provider = activity.get("provider") or {}
        args = substitute(provider.get("arguments") or {}, configuration or {}, secrets or {})
        _check_activity(activity, args, limits)
    return limits
