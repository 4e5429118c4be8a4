"""Cloud Run services, as the kit changes them: read a service, send it back with changes
and wait for the new revision, and roll out a cold start without waiting.

`begin_cold_start` is the staging form of a fresh service instance: it rolls out the new
revision without waiting, because a revision whose container exits with code 3 makes the
rollout fail, and that failure is what an experiment observes (from Cloud Logging), not
an error of the action.

Calls the Cloud Run Admin API v2 (`services.get` / `services.patch`), the operations
chaostoolkit-google-cloud-platform's `get_service` and `update_service` wrap.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.targets.gcp.api import (
    OPERATION_TIMEOUT_S,
    call,
    gcp_client,
    project_and_region,
    wait_for_operation,
)
from chaoskit.targets.gcp.resources import service_name
from chaoskit.testbed.instances import KIND as SERVICE_INSTANCE_KIND

__all__ = [
    "COLD_START_LABEL",
    "CloudRunColdStart",
    "begin_cold_start",
    "cold_start_body",
    "get_service",
    "replace_service",
]

COLD_START_LABEL = "chaos-kit-cold-start"


def get_service(name: str, configuration: Configuration | None, secrets: Secrets | None) -> dict:
    services = gcp_client("run", "v2", configuration, secrets).projects().locations().services()
    return call(services.get(name=name), f"reading Cloud Run service {name}")


def _patch_service(
    name: str, body: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> str:
    """Send the service back with `body`'s changes; return the rollout's operation name."""
    services = gcp_client("run", "v2", configuration, secrets).projects().locations().services()
    return call(services.patch(name=name, body=body), f"updating Cloud Run service {name}")["name"]


def _wait_for_rollout(
    operation: str,
    what: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
    timeout_s: float = OPERATION_TIMEOUT_S,
) -> None:
    """Wait for a rollout's operation; a failed one raises KitError naming `what`."""
    operations = gcp_client("run", "v2", configuration, secrets).projects().locations().operations()
    wait_for_operation(
        lambda: operations.get(name=operation), what, configuration, timeout_s=timeout_s
    )


def replace_service(
    name: str, body: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, Any]:
    """Send the service back with `body`'s changes; wait for the new revision."""
    operation = _patch_service(name, body, configuration, secrets)
    what = f"updating Cloud Run service {name}"
    _wait_for_rollout(operation, what, configuration, secrets)
    return get_service(name, configuration, secrets)


def cold_start_body(
    name: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, Any]:
    """The service as it is, with a fresh label on its template: a new revision."""
    body = copy.deepcopy(get_service(name, configuration, secrets))
    template = body.setdefault("template", {})
    template.setdefault("labels", {})[COLD_START_LABEL] = str(time.time_ns())
    return body


@dataclass
class CloudRunColdStart:
    """A rolled-out revision whose first instance is starting: what an experiment's
    `observe_startup` reads from Cloud Logging. Registered as a service instance."""

    name: str
    service: str
    since: str
    operation: str
    project: str
    region: str
    configuration: Configuration | None
    secrets: Secrets | None
    kind: str = SERVICE_INSTANCE_KIND

    def stop(self) -> dict[str, Any]:
        # Nothing to stop: Cloud Run keeps serving the last revision that became ready.
        return {"exit_code": None, "rollout": self.operation}

    def finish(self, timeout_s: float) -> dict[str, Any]:
        """Wait at most `timeout_s` for the rollout to end (so that the next rollout is
        not refused as a conflict); a failed rollout is an outcome, not an error.
        Returns `{"operation", "succeeded", "detail"}`."""
        try:
            _wait_for_rollout(
                self.operation,
                f"rolling out Cloud Run service {self.service}",
                self.configuration,
                self.secrets,
                timeout_s=max(0.0, timeout_s),
            )
        except KitError as failure:
            return {"operation": self.operation, "succeeded": False, "detail": str(failure)}
        return {"operation": self.operation, "succeeded": True, "detail": None}


def begin_cold_start(
    name: str,
    service: str,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> CloudRunColdStart:
    """Roll out a new revision of the same image and return at once, with the moment
    the rollout began (the new instance's log lines come after it)."""
    project, region = project_and_region(configuration, project, region)
    full_name = service_name(service, project, region)
    body = cold_start_body(full_name, configuration, secrets)
    since = datetime.now(UTC).isoformat()
    operation = _patch_service(full_name, body, configuration, secrets)
    short_name = full_name.rsplit("/", 1)[-1]
    return CloudRunColdStart(
        name, short_name, since, operation, project, region, configuration, secrets
    )
