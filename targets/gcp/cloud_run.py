"""Cloud Run services, as the kit changes them: roll out a new revision that differs from
the serving one only in what the kit means to change, wait for it, or (a cold start)
roll it out without waiting.

Every revision the kit makes:
- is named by the kit (`<service>-chaos-<6 hex>`): a name sent back that a revision
  already has, with another configuration, is refused by Cloud Run (409), and a name of
  its own lets the startup's log lines be read by revision;
- runs the serving revision's image digest, not its tag, so a cold start of "the same
  image" cannot pick up a newer `:latest`;
- is sent as a PATCH with an `updateMask` naming only the fields it sets, never the
  service's output-only fields.

`begin_cold_start` is the staging form of a fresh service instance: it rolls out the new
revision without waiting, because a revision whose container exits with code 3 makes the
rollout fail, and that failure is what an experiment observes (from Cloud Logging), not
an error of the action.

Calls the Cloud Run Admin API v2 (`services.get`, `services.patch`, `revisions.get`),
the operations chaostoolkit-google-cloud-platform's `get_service` and `update_service`
wrap.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.targets.gcp.api import (
    OPERATION_TIMEOUT_S,
    call,
    gcp_client,
    log_window_start,
    project_and_region,
    wait_for_operation,
)
from chaoskit.targets.gcp.resources import service_name
from chaoskit.testbed.instances import KIND as SERVICE_INSTANCE_KIND

__all__ = [
    "COLD_START_LABEL",
    "CloudRunColdStart",
    "begin_cold_start",
    "cold_start_changes",
    "get_service",
    "pinned_image",
    "update_service",
]

COLD_START_LABEL = "chaos-kit-cold-start"


def _services(configuration: Configuration | None, secrets: Secrets | None) -> Any:
    return gcp_client("run", "v2", configuration, secrets).projects().locations().services()


def get_service(name: str, configuration: Configuration | None, secrets: Secrets | None) -> dict:
    services = _services(configuration, secrets)
    return call(services.get(name=name), f"reading Cloud Run service {name}")


def pinned_image(image: str, digest: str | None) -> str:
    """`image` at `digest`: the digest as Cloud Run reports it (a full reference
    `repo@sha256:...`, or only `sha256:...`); the image as is without one."""
    if not digest:
        return image
    if "@" in digest:
        return digest
    repository = image.split("@", 1)[0]
    name_start = repository.rfind("/") + 1
    if ":" in repository[name_start:]:  # a tag, not a registry's port
        repository = repository[: repository.rindex(":")]
    return f"{repository}@{digest}"


def _pinned_containers(
    service: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> list[dict[str, Any]]:
    """The template's containers, each at the image digest its serving revision runs."""
    containers = copy.deepcopy((service.get("template") or {}).get("containers") or [])
    serving = service.get("latestReadyRevision")
    if not serving:
        return containers
    name = serving if "/" in serving else f"{service['name']}/revisions/{serving}"
    revision = call(
        _services(configuration, secrets).revisions().get(name=name),
        f"reading Cloud Run revision {name}",
    )
    statuses = revision.get("containerStatuses") or []
    by_name = {status.get("name"): status.get("imageDigest") for status in statuses}
    for index, container in enumerate(containers):
        digest = by_name.get(container.get("name"))
        if digest is None and len(containers) == len(statuses) == 1:
            digest = statuses[index].get("imageDigest")
        container["image"] = pinned_image(container["image"], digest)
    return containers


def _revision_name(service: str) -> str:
    # Cloud Run revision names start with the service's; at most 63 characters
    return f"{service.rsplit('/', 1)[-1]}-chaos-{uuid.uuid4().hex[:6]}"


Changes = Callable[[dict[str, Any]], dict[str, Any]]


def _roll_out(
    name: str, changes: Changes, configuration: Configuration | None, secrets: Secrets | None
) -> tuple[str, str]:
    """PATCH the service with a new revision that sets `changes(service)` (template
    fields) on the serving revision's images; return (the rollout's operation, the
    revision's name)."""
    current = get_service(name, configuration, secrets)
    revision = _revision_name(name)
    containers = _pinned_containers(current, configuration, secrets)
    template = {"revision": revision, "containers": containers, **changes(current)}
    # a field in the mask but not in the body is cleared (a change to None)
    mask = ",".join(f"template.{field}" for field in template)
    body = {"template": {field: value for field, value in template.items() if value is not None}}
    patch = _services(configuration, secrets).patch(name=name, updateMask=mask, body=body)
    operation = call(patch, f"updating Cloud Run service {name}")["name"]
    return operation, revision


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


def update_service(
    name: str,
    changes: Changes,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Roll out a revision with `changes(service)` to the template; wait for it; return
    the service as it is then."""
    operation, _ = _roll_out(name, changes, configuration, secrets)
    _wait_for_rollout(operation, f"updating Cloud Run service {name}", configuration, secrets)
    return get_service(name, configuration, secrets)


def cold_start_changes(service: dict[str, Any]) -> dict[str, Any]:
    """The template's labels with a fresh cold-start label: what marks a kit's cold
    start among the service's revisions."""
    labels = (service.get("template") or {}).get("labels") or {}
    return {"labels": {**labels, COLD_START_LABEL: str(time.time_ns())}}


@dataclass
class CloudRunColdStart:
    """A rolled-out revision whose first instance is starting: what an experiment's
    `observe_startup` reads from Cloud Logging. Registered as a service instance."""

    name: str
    service: str
    revision: str
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
    """Roll out a new revision of the serving image and return at once, with the
    revision's name and the moment the rollout began (its log lines come after it)."""
    project, region = project_and_region(configuration, project, region)
    full_name = service_name(service, project, region)
    since = log_window_start()
    operation, revision = _roll_out(full_name, cold_start_changes, configuration, secrets)
    short_name = full_name.rsplit("/", 1)[-1]
    return CloudRunColdStart(
        name, short_name, revision, since, operation, project, region, configuration, secrets
    )
