"""A fresh instance of the system under test, wherever the experiment acts: a process of
the service the configuration describes (`service`, the reference service by default)
on the embedded testbed, a Cloud Run cold start (a new revision of the same image) on
staging. Either way it is registered under its name, observed in the same shape, and
stopped by the run's end."""

from __future__ import annotations

import uuid
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.redaction import redact_dsn
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.database import wait_until_sessions_left
from chaoskit.targets.deployment import on_staging, staging_setting
from chaoskit.targets.gcp.cloud_run import CloudRunColdStart, begin_cold_start
from chaoskit.targets.gcp.logging import wait_for_cloud_run_startup
from chaoskit.testbed.instances import KIND, ServiceInstance, launch_instance
from chaoskit.testbed.state import testbed_home
from chaoskit.testbed.system import system_under_test

__all__ = [
    "observe_fresh_instance",
    "observe_named_instance",
    "start_fresh_instance",
    "throwaway_startup",
]

Instance = ServiceInstance | CloudRunColdStart


def _launch(name: str, database_url: str | None, configuration: Configuration) -> ServiceInstance:
    """A process of the system under test (against `database_url`, else the
    configuration's)."""
    settings = RunSettings.of(configuration)
    values = settings.values()
    if database_url:
        values["database_url"] = database_url
    system = system_under_test(settings.service)
    return launch_instance(name, system, values, testbed_home() / "instances")


def _start(
    name: str,
    database_url: str | None,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> Instance:
    if on_staging(configuration):
        service = staging_setting(configuration, "gcp_cloud_run_service", "the cold start")
        return begin_cold_start(name, service, configuration=configuration, secrets=secrets)
    return _launch(name, database_url, configuration)


def start_fresh_instance(
    name: str,
    database_url: str | None,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Start the instance `name` (against `database_url`, else the configuration's) and
    register it; return at once what identifies it."""
    if registry.lookup(KIND, name) is not None:
        raise KitError(f"an instance named {name!r} is already running: give another name")
    instance = _start(name, database_url, configuration, secrets)
    registry.register(instance)
    if isinstance(instance, CloudRunColdStart):
        return {
            "instance": name,
            "service": instance.service,
            "revision": instance.revision,
            "rollout": instance.operation,
            "since": instance.since,
            "traffic": instance.traffic,
            "left_behind": instance.left_behind,
        }
    return {
        "instance": name,
        "url": instance.url,
        "pid": instance.process.pid,
        "log": str(instance.log_path),
        "database": redact_dsn(database_url or RunSettings.of(configuration).database_url or ""),
    }


def observe_fresh_instance(instance: Instance, timeout_s: float) -> dict[str, Any]:
    """Wait until the instance is ready or its startup has ended; report the startup."""
    if isinstance(instance, ServiceInstance):
        return instance.observe_startup(timeout_s)
    report = wait_for_cloud_run_startup(
        instance.service,
        instance.since,
        timeout_s,
        instance.revision,
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
    timeout_s: float,
    database_url: str | None,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Start an instance nobody else knows of, observe its startup, stop it, and wait
    until its database sessions are gone, so that what runs next finds the database as
    it was."""
    name = f"cold-start-{uuid.uuid4().hex[:8]}"
    instance = _start(name, database_url, configuration, secrets)
    try:
        return observe_fresh_instance(instance, timeout_s)
    finally:
        instance.stop()
        admin = RunSettings.of(configuration).admin_database_url
        if isinstance(instance, ServiceInstance) and admin:
            wait_until_sessions_left(admin, f"service-{name}")
