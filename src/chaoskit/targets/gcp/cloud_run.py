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

The serving revision is the one `trafficStatuses` sends most traffic to. A service
whose traffic is pinned to a revision gives a new one none: a cold start still starts
its instance (Cloud Run checks that a revision becomes ready) and says so; a change of
the service's own settings is refused, since no request would see it. What a rollout
leaves behind (the kit's revision name in the template, images by digest, the
cold-start label) is said in its answer, with the command that puts it back.

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
    OperationRunning,
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
    "refuse_when_pinned",
    "serving_revisions",
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


def serving_revisions(service: dict[str, Any]) -> tuple[list[str], bool]:
    """The revisions serving traffic, most first, and whether traffic follows the
    latest ready revision (a new revision then takes it over)."""
    statuses = [t for t in service.get("trafficStatuses") or [] if t.get("percent")]
    if not statuses:  # no status yet: Cloud Run's default, all to the latest
        latest = service.get("latestReadyRevision")
        return ([latest] if latest else []), True
    statuses.sort(key=lambda t: -t["percent"])
    follows = any(t.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" for t in statuses)
    return [t["revision"] for t in statuses if t.get("revision")], follows


def _pinned_containers(
    service: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> list[dict[str, Any]]:
    """The template's containers, each at the image digest its serving revision runs."""
    containers = copy.deepcopy((service.get("template") or {}).get("containers") or [])
    serving = next(iter(serving_revisions(service)[0]), None)
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


@dataclass
class _RolledOut:
    operation: str
    revision: str
    left_behind: dict[str, Any]  # what the service's template keeps, and how to undo it
    traffic: str | None  # why the new revision serves no request, if it does not


def _left_behind(name: str, before: dict[str, Any], template: dict[str, Any]) -> dict:
    """What a rollout of `template` leaves in the service, and the gcloud command that
    puts back its images and labels as they were `before`."""
    project, region, service = name.split("/")[1], name.split("/")[3], name.rsplit("/", 1)[-1]
    images = [c.get("image") for c in before.get("containers") or []]
    command = f"gcloud run services update {service} --project={project} --region={region}"
    if len(images) == 1 and images[0] != template["containers"][0]["image"]:
        command += f" --image={images[0]}"
    if COLD_START_LABEL in (template.get("labels") or {}) and COLD_START_LABEL not in (
        before.get("labels") or {}
    ):
        command += f" --remove-labels={COLD_START_LABEL}"
    return {
        "revision_name": template["revision"],
        "images": [c["image"] for c in template["containers"]],
        "labels": template.get("labels"),
        "restore": command,
    }


def _roll_out(
    name: str, changes: Changes, configuration: Configuration | None, secrets: Secrets | None
) -> _RolledOut:
    """PATCH the service with a new revision that sets `changes(service)` (template
    fields) on the serving revision's images."""
    current = get_service(name, configuration, secrets)
    serving, follows_latest = serving_revisions(current)
    revision = _revision_name(name)
    containers = _pinned_containers(current, configuration, secrets)
    template = {"revision": revision, "containers": containers, **changes(current)}
    # a field in the mask but not in the body is cleared (a change to None)
    mask = ",".join(f"template.{field}" for field in template)
    body = {"template": {field: value for field, value in template.items() if value is not None}}
    patch = _services(configuration, secrets).patch(name=name, updateMask=mask, body=body)
    operation = call(patch, f"updating Cloud Run service {name}")["name"]
    traffic = None
    if not follows_latest:
        traffic = (
            f"traffic is pinned to {', '.join(serving)}: revision {revision} serves no request"
        )
    left_behind = _left_behind(name, current.get("template") or {}, template)
    return _RolledOut(operation, revision, left_behind, traffic)


def refuse_when_pinned(name: str, service: dict[str, Any]) -> None:
    serving, follows_latest = serving_revisions(service)
    if not follows_latest:
        raise KitError(
            f"Cloud Run service {name} sends its traffic to {', '.join(serving)}, not to the "
            "latest revision: a new revision would serve no request; send traffic to the "
            "latest (gcloud run services update-traffic --to-latest) first"
        )


def _wait_for_rollout(
    operation: str,
    what: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
    timeout_s: float | None = None,
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
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Roll out a revision with `changes(service)` to the template; wait for it; return
    the service as it is then, and what the rollout left behind."""
    rolled = _roll_out(name, changes, configuration, secrets)
    _wait_for_rollout(
        rolled.operation, f"updating Cloud Run service {name}", configuration, secrets
    )
    left_behind = {**rolled.left_behind, "traffic": rolled.traffic}
    return get_service(name, configuration, secrets), left_behind


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
    left_behind: dict[str, Any]
    traffic: str | None = None
    kind: str = SERVICE_INSTANCE_KIND

    def stop(self) -> dict[str, Any]:
        # Nothing to stop: Cloud Run keeps serving the last revision that became ready.
        return {"exit_code": None, "rollout": self.operation}

    def finish(self, timeout_s: float) -> dict[str, Any]:
        """Wait at most `timeout_s` for the rollout to end (so that the next rollout is
        not refused as a conflict); a failed rollout is an outcome, not an error, and
        one still under way then is neither (`succeeded` null).
        Returns `{"operation", "succeeded", "detail"}`."""
        try:
            _wait_for_rollout(
                self.operation,
                f"rolling out Cloud Run service {self.service}",
                self.configuration,
                self.secrets,
                timeout_s=max(0.0, timeout_s),
            )
        except OperationRunning as running:
            return {"operation": self.operation, "succeeded": None, "detail": str(running)}
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
    since = log_window_start(configuration)
    rolled = _roll_out(full_name, cold_start_changes, configuration, secrets)
    short_name = full_name.rsplit("/", 1)[-1]
    return CloudRunColdStart(
        name,
        short_name,
        rolled.revision,
        since,
        rolled.operation,
        project,
        region,
        configuration,
        secrets,
        rolled.left_behind,
        rolled.traffic,
    )
