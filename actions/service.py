"""Fresh instances of the system under test: a cold start, as Cloud Run starts a container.

The system under test is the configuration's `service` (the kit's reference service when
it is empty): on the embedded testbed a fresh instance is a real process of it, started
against the database through the connector; on staging (configuration `target:
staging`) it is a cold start of the Cloud Run service `gcp_cloud_run_service`, a new
revision of the same image with its deployed settings.
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
    database_url: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Start a fresh instance of the system under test (a cold start); return at once.

    Observe it with `chaoskit.probes.service.observe_startup(instance=name)`. It is
    stopped by `stop_service_instance`, and with the experiment's process in any case.

    Arguments:
        name: the instance's name, unique while it runs.
        database_url: the database it starts against (default: the configuration's
            `database_url`, through the connector as in production).

    Returns `{"instance", "url", "pid", "log", "database"}` (the URL with no password);
    on staging `{"instance", "service", "rollout", "since"}`.
    """
    return start_fresh_instance(name, database_url, configuration, secrets)


@activity
def stop_service_instance(name: str) -> dict[str, Any]:
    """Stop the instance `name` if it still runs (SIGTERM, SIGKILL after 10 seconds of
    grace); idempotent.

    Returns `{"instance", "running", "exit_code"}`: `running` says whether there was
    anything to stop. On staging there is nothing to stop: Cloud Run goes on serving the
    last revision that became ready.
    """
    instance = registry.unregister(KIND, name)
    if instance is None:
        return {"instance": name, "running": False}
    return {"instance": name, "running": True, **instance.stop()}
