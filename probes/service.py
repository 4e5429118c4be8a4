"""Observations of the service: the reference service's instances on the embedded
testbed, Cloud Run's (read from Cloud Logging) on staging, and health through its URL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.kit.health import service_health as check_health
from chaoskit.targets.fresh_instance import observe_named_instance, throwaway_startup

__all__ = ["cold_start", "observe_startup", "repeated_cold_starts", "service_health"]


@activity
def service_health(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """Ask `<url>/health` whether the service is healthy.

    Arguments:
        url: the service's base URL, e.g. http://127.0.0.1:8000.
        timeout_s: seconds to wait for the answer.

    Returns `{"healthy", "status_code", "body"}`; an unreachable service is reported
    as `healthy: false` with `status_code: null` and the `error`, not raised, so that a
    steady-state tolerance can judge it.
    """
    return check_health(url, timeout_s)


@activity
def observe_startup(instance: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Wait until the instance `instance` is ready or has exited, and report its startup.

    Arguments:
        instance: the name given to `chaoskit.actions.service.start_service_instance`.
        timeout_s: seconds to wait at most.

    Returns `{"instance", "ready", "exit_code", "duration_s", "startup_failed",
    "failed_phase", "phases"}`; each phase is `{phase, name, status, started_at,
    elapsed_s, cause, detail}` as the service logged it, with `status` one of
    succeeded, timeout, failed, blocked. On staging the phases come from Cloud Logging,
    and `rollout` says how the new revision's rollout ended (`succeeded`, `detail`).
    """
    return observe_named_instance(instance, timeout_s)


@activity
def cold_start(
    database_url: str,
    initialization_timeout_s: float = 75.0,
    connect_timeout_s: float = 35.0,
    pool_size: int = 10,
    max_overflow: int = 15,
    pool_timeout_s: float = 90.0,
    connect_retry_s: float = 0.5,
    schema_load_bytes: int = 0,
    timeout_s: float = 120.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start a throwaway instance, observe its startup, stop it: can a fresh one start?

    Arguments are those of `chaoskit.actions.service.start_service_instance` (seconds for every
    `_s`), plus `timeout_s`, the longest wait for the startup to end. On staging it is
    a Cloud Run cold start (a new revision), observed from Cloud Logging.

    Returns the same report as `observe_startup`; `ready` is true when the instance
    passed all seven phases (and, locally, answered `/health`).
    """
    settings = {
        "database_url": database_url,
        "initialization_timeout_s": initialization_timeout_s,
        "connect_timeout_s": connect_timeout_s,
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout_s": pool_timeout_s,
        "connect_retry_s": connect_retry_s,
        "schema_load_bytes": schema_load_bytes,
    }
    return throwaway_startup(settings, timeout_s, configuration, secrets)


@activity
def repeated_cold_starts(
    count: int,
    database_url: str,
    timeout_s: float = 120.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Start `count` throwaway instances one after another, each as `cold_start` with the
    same `database_url` and service settings (`initialization_timeout_s`, `pool_size`,
    ...), and report how consistently they end.

    Returns `starts`, `ready` (how many started), `startup_failed` (how many lifespans
    reported `app.state.startup_failed`), `exit_codes` (count per exit code, as
    strings), `failed_phases` (count per `phase:status:cause`) and every `reports`
    entry without its phase list.
    """
    if not isinstance(count, int) or not 0 < count <= 50:
        raise ActivityFailed(f"count={count!r} is out of range: give 1 to 50 starts")
    reports = [
        cold_start(
            database_url,
            timeout_s=timeout_s,
            configuration=configuration,
            secrets=secrets,
            **settings,
        )
        for _ in range(count)
    ]
    exit_codes = Counter(str(r["exit_code"]) for r in reports)
    failed_phases = Counter(
        f"{p['phase']}:{p['status']}:{p['cause']}"
        for p in (r["failed_phase"] for r in reports)
        if p is not None
    )
    return {
        "starts": count,
        "ready": sum(1 for r in reports if r["ready"]),
        "startup_failed": sum(1 for r in reports if r["startup_failed"]),
        "exit_codes": dict(exit_codes),
        "failed_phases": dict(failed_phases),
        "reports": [{k: v for k, v in r.items() if k != "phases"} for r in reports],
    }
