"""A fresh instance of the service, wherever the experiment acts: a process of the
reference service on the embedded testbed, a Cloud Run cold start (a new revision of the
same image) on staging. Either way it is registered under its name, observed in the same
shape, and stopped by the run's end."""

from __future__ import annotations

import uuid
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.redaction import redact_dsn
from chaoskit.targets.deployment import on_staging, staging_setting
from chaoskit.targets.gcp.cloud_run import CloudRunColdStart, begin_cold_start
from chaoskit.targets.gcp.logging import wait_for_cloud_run_startup
from chaoskit.testbed.instances import KIND, ServiceInstance, launch_service, service_settings
from chaoskit.testbed.state import testbed_home

__all__ = [
    "observe_fresh_instance",
    "observe_named_instance",
    "start_fresh_instance",
    "throwaway_startup",
]


def _start(
    name: str,
    settings: dict[str, Any],
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> ServiceInstance | CloudRunColdStart:
    if on_staging(configuration):
        service = staging_setting(configuration, "gcp_cloud_run_service", "the cold start")
        return begin_cold_start(name, service, configuration=configuration, secrets=secrets)
    database_url = settings.pop("database_url")
    return launch_service(
        name, service_settings(name, database_url, **settings), testbed_home() / "instances"
    )


def start_fresh_instance(
    name: str,
    settings: dict[str, Any],
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Start the instance `name` with the service `settings` (`database_url` and the
    reference service's settings; on staging the deployed service's own apply) and
    register it; return at once what identifies it."""
    if registry.lookup(KIND, name) is not None:
        raise KitError(f"an instance named {name!r} is already running: give another name")
    instance = _start(name, dict(settings), configuration, secrets)
    registry.register(instance)
    if isinstance(instance, CloudRunColdStart):
        return {
            "instance": name,
            "service": instance.service,
            "rollout": instance.operation,
            "since": instance.since,
        }
    return {
        "instance": name,
        "url": instance.url,
        "pid": instance.process.pid,
        "log": str(instance.log_path),
        "database": redact_dsn(instance.settings.database_url),
    }


def observe_fresh_instance(
    instance: ServiceInstance | CloudRunColdStart, timeout_s: float
) -> dict[str, Any]:
    """Wait until the instance is ready or its startup has ended; report the startup."""
    if isinstance(instance, ServiceInstance):
        return instance.observe_startup(timeout_s)
    report = wait_for_cloud_run_startup(
        instance.service,
        instance.since,
        timeout_s,
        instance.project,
        instance.region,
        configuration=instance.configuration,
        secrets=instance.secrets,
    )
    return {**report, "rollout": instance.finish(timeout_s - report["duration_s"])}


def observe_named_instance(name: str, timeout_s: float) -> dict[str, Any]:
    """`observe_fresh_instance` for the instance registered as `name` in this run."""
    instance = registry.lookup(KIND, name)
    if not isinstance(instance, ServiceInstance | CloudRunColdStart):
        raise KitError(
            f"no service instance named {name!r} was started in this run: start it "
            "with chaoskit.actions.service.start_service_instance first"
        )
    return observe_fresh_instance(instance, timeout_s)


def throwaway_startup(
    settings: dict[str, Any],
    timeout_s: float,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Start an instance nobody else knows of, observe its startup, stop it."""
    instance = _start(f"cold-start-{uuid.uuid4().hex[:8]}", dict(settings), configuration, secrets)
    try:
        return observe_fresh_instance(instance, timeout_s)
    finally:
        instance.stop()
