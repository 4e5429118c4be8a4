"""Fresh instances of the service: a cold start, as Cloud Run starts a container.

On the embedded testbed a fresh instance is a real process of the reference service; on
staging (configuration `target: staging`) it is a cold start of the Cloud Run service
`gcp_cloud_run_service`, a new revision of the same image with its deployed settings.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import activity
from chaoskit.targets.fresh_instance import start_fresh_instance
from chaoskit.testbed.instances import KIND

__all__ = ["start_service_instance", "stop_service_instance"]


@activity
def start_service_instance(
    name: str,
    database_url: str,
    initialization_timeout_s: float = 75.0,
    connect_timeout_s: float = 35.0,
    pool_size: int = 10,
    max_overflow: int = 15,
    pool_timeout_s: float = 90.0,
    connect_retry_s: float = 0.5,
    schema_load_bytes: int = 0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start a fresh instance of the service (a cold start) and return at once.

    The instance runs the 7-phase startup against `database_url`; observe it with
    `chaoskit.probes.service.observe_startup(instance=name)`. It exits by itself if its startup
    fails (exit code 3), and with the experiment's process in any case.

    On staging it rolls out a new revision of the Cloud Run service instead; the
    deployed service's own settings apply, not the arguments below, and the result is
    `{"instance", "service", "rollout", "since"}`.

    Arguments:
        name: the instance's name, unique while it runs.
        database_url: the PostgreSQL URL the service connects to.
        initialization_timeout_s: Phase 3's deadline, in seconds.
        connect_timeout_s: one connection attempt's deadline, in seconds.
        pool_size, max_overflow: the SQLAlchemy pool; Phase 3 opens `pool_size`.
        pool_timeout_s: seconds to wait for a pooled connection.
        connect_retry_s: seconds between connection attempts in Phase 3.
        schema_load_bytes: bytes Phase 3's schema step reads after its query (a large
            schema operation; 0 for none).

    Returns `{"instance", "url", "pid", "log", "database"}` (the URL with no password).
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
    return start_fresh_instance(name, settings, configuration, secrets)


@activity
def stop_service_instance(name: str) -> dict[str, Any]:
    """Stop the instance `name` if it still runs; idempotent.

    Returns `{"instance", "running", "exit_code"}`: `running` says whether there was
    anything to stop. On staging there is nothing to stop: Cloud Run goes on serving the
    last revision that became ready.
    """
    instance = registry.unregister(KIND, name)
    if instance is None:
        return {"instance": name, "running": False}
    return {"instance": name, "running": True, **instance.stop()}
