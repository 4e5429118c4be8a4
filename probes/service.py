"""Observations of the service: the reference service's instances on the embedded
testbed, Cloud Run's (read from Cloud Logging) on staging, and health through its URL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.health import service_health as check_health
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.fresh_instance import observe_named_instance, throwaway_startup
from chaoskit.testbed.system import health_path

__all__ = ["cold_start", "observe_startup", "repeated_cold_starts", "service_health"]


def _timeout(timeout_s: float | None, configuration: Configuration | None) -> float:
    """The argument, else the configuration's `startup_observe_timeout_s`."""
    if timeout_s is not None:
        return float(timeout_s)
    return RunSettings.of(configuration).startup_observe_timeout_s


@activity
def service_health(
    url: str | None = None, timeout_s: float = 5.0, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Ask the service whether it is healthy: `GET <url><path>`, the path being the
    system under test's `ready.http` (the reference service's `/health`).

    Arguments:
        url: the service's base URL, e.g. http://127.0.0.1:8000 (default: the
            configuration's `service_url`: the testbed's long-running service, or
            staging's).
        timeout_s: seconds to wait for the answer.

    Returns `{"healthy", "status_code", "body"}`; an unreachable service is reported
    as `healthy: false` with `status_code: null` and the `error`, not raised, so that a
    steady-state tolerance can judge it.
    """
    url = RunSettings.of(configuration).given_or_configured(
        url,
        "service_url",
        argument="url",
        hint="the embedded testbed's control fills it in",
    )
    return check_health(url, health_path(configuration), timeout_s)


@activity
def observe_startup(
    instance: str, timeout_s: float | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Wait until the instance `instance` is ready or has exited, and report its startup.

    Arguments:
        instance: the name given to `chaoskit.actions.service.start_service_instance`.
        timeout_s: seconds to wait at most (default: the configuration's
            `startup_observe_timeout_s`).

    Returns `{"instance", "ready", "exit_code", "duration_s", "startup_failed",
    "failed_phase", "phases"}`; each phase is `{phase, name, status, started_at,
    elapsed_s, cause, detail}` as the service logged it, with `status` one of
    succeeded, timeout, failed, blocked. On staging the phases come from Cloud Logging,
    and `rollout` says how the new revision's rollout ended (`succeeded`, `detail`).
    """
    return observe_named_instance(instance, _timeout(timeout_s, configuration))


@activity
def cold_start(
    timeout_s: float | None = None,
    database_url: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start a throwaway instance of the system under test, observe its startup, stop it:
    can a fresh one start?

    Arguments:
        timeout_s: seconds to wait at most for the startup to end (default: the
            configuration's `startup_observe_timeout_s`).
        database_url: as for `chaoskit.actions.service.start_service_instance`.

    Returns the same report as `observe_startup`; `ready` is true once the instance
    answered its readiness check. On staging it is a Cloud Run cold start (a new
    revision), observed from Cloud Logging.
    """
    return throwaway_startup(
        _timeout(timeout_s, configuration), database_url, configuration, secrets
    )


@activity
def repeated_cold_starts(
    count: int,
    timeout_s: float | None = None,
    database_url: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start `count` throwaway instances one after another, each as `cold_start`, and
    report how consistently they end.

    Returns `starts`, `ready` (how many started), `startup_failed` (how many lifespans
    reported a failed startup), `exited_as_declared` (how many exited with the system
    under test's `failure_exit_code`), `exit_codes` (count per exit code, as strings),
    `failed_phases` (count per `phase:status:cause`) and every `reports` entry without
    its phase list.
    """
    if not isinstance(count, int) or not 0 < count <= 50:
        raise KitError(f"count={count!r} is out of range: give 1 to 50 starts")
    timeout_s = _timeout(timeout_s, configuration)
    reports = [
        throwaway_startup(timeout_s, database_url, configuration, secrets) for _ in range(count)
    ]
    exit_codes = Counter(str(r["exit_code"]) for r in reports)
    failed_phases = Counter(
        f"{p['phase']}:{p['status']}:{p['cause']}"
        for p in (r["failed_phase"] for r in reports)
        if p is not None
    )
    unobserved = [r for r in reports if r.get("observed") is False]
    failure_exit_code = RunSettings.of(configuration).failure_exit_code
    summary = {
        "starts": count,
        "ready": sum(1 for r in reports if r["ready"]),
        "exited_as_declared": sum(1 for r in reports if r["exit_code"] == failure_exit_code),
        "startup_failed": sum(1 for r in reports if r["startup_failed"]),
        "exit_codes": dict(exit_codes),
        "failed_phases": dict(failed_phases),
        "unreported": sorted({k for r in reports for k in r["unreported"]}),
        "reports": [{k: v for k, v in r.items() if k != "phases"} for r in reports],
    }
    if unobserved:
        summary.update(observed=False, reason=unobserved[0]["reason"])
    return summary
