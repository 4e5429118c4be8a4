"""Observations of the service: the reference service's instances on the embedded
testbed, Cloud Run's (read from Cloud Logging) on staging, and health through its URL."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaoskit.actions.gcp.cloud_run import CloudRunColdStart, begin_cold_start
from chaoskit.actions.target import on_staging, staging_setting
from chaoskit.probes.gcp.logging import wait_for_cloud_run_startup
from chaoskit.testbed import registry
from chaoskit.testbed.instances import KIND, ServiceInstance, launch_service, service_settings
from chaoskit.testbed.service.settings import SettingsError
from chaoskit.testbed.state import testbed_home

__all__ = ["cold_start", "observe_startup", "repeated_cold_starts", "service_health"]


def service_health(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """Ask `<url>/health` whether the service is healthy.

    Arguments:
        url: the service's base URL, e.g. http://127.0.0.1:8000.
        timeout_s: seconds to wait for the answer.

    Returns `{"healthy", "status_code", "body"}`; an unreachable service is reported
    as `healthy: false` with `status_code: null` and the `error`, not raised, so that a
    steady-state tolerance can judge it.
    """
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as error:
        return {"healthy": False, "status_code": None, "error": type(error).__name__}
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    return {
        "healthy": response.status_code == 200,
        "status_code": response.status_code,
        "body": body,
    }


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
    started = registry.lookup(KIND, instance)
    if isinstance(started, CloudRunColdStart):
        return _observe_cold_start(started, timeout_s)
    if not isinstance(started, ServiceInstance):
        raise ActivityFailed(
            f"no service instance named {instance!r} was started in this run: start it "
            "with chaoskit.actions.service.start_service_instance first"
        )
    return started.observe_startup(timeout_s)


def _observe_cold_start(cold_start: CloudRunColdStart, timeout_s: float) -> dict[str, Any]:
    """The startup from Cloud Logging, and how the rollout ended (`rollout`)."""
    report = wait_for_cloud_run_startup(
        cold_start.service,
        cold_start.since,
        timeout_s,
        cold_start.project,
        cold_start.region,
        configuration=cold_start.configuration,
        secrets=cold_start.secrets,
    )
    return {**report, "rollout": cold_start.finish(timeout_s - report["duration_s"])}


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
    if on_staging(configuration):
        service = staging_setting(configuration, "gcp_cloud_run_service", "the cold start")
        rollout = begin_cold_start(
            "cold-start-probe", service, configuration=configuration, secrets=secrets
        )
        return _observe_cold_start(rollout, timeout_s)
    try:
        settings = service_settings(
            "cold-start-probe",
            database_url,
            initialization_timeout_s=initialization_timeout_s,
            connect_timeout_s=connect_timeout_s,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout_s=pool_timeout_s,
            connect_retry_s=connect_retry_s,
            schema_load_bytes=schema_load_bytes,
        )
    except SettingsError as error:
        raise ActivityFailed(str(error)) from None
    instance = launch_service(
        f"cold-start-{uuid.uuid4().hex[:8]}", settings, testbed_home() / "instances"
    )
    try:
        return instance.observe_startup(timeout_s)
    finally:
        instance.stop()


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
