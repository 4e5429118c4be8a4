"""The Cloud Run service's revisions and instances: which revision serves, whether the
newest one became ready (and why not), and how many containers run."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.targets.gcp.api import call, gcp_client, project_and_region
from chaoskit.targets.gcp.cloud_run import get_service
from chaoskit.targets.gcp.monitoring import cloud_run_instances
from chaoskit.targets.gcp.resources import service_name

__all__ = ["cloud_run_status"]


def _ready_condition(resource: dict[str, Any]) -> dict[str, Any]:
    conditions = [resource.get("terminalCondition") or {}, *(resource.get("conditions") or [])]
    return next((c for c in conditions if c.get("type") == "Ready"), {})


@activity
def cloud_run_status(
    service: str,
    minutes: float = 5.0,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Read the service and its newest revision (Cloud Run Admin API v2) and its
    instance count (Cloud Monitoring, over the last `minutes`).

    Returns `{"service", "latest_created_revision", "latest_ready_revision",
    "serving_latest", "revision_ready", "revision_message", "instances"}`:
    `serving_latest` is false while the newest revision is not the one serving (say,
    after a cold start whose container exited), and `revision_message` says why.
    """
    project, region = project_and_region(configuration, project, region)
    name = service_name(service, project, region)
    current = get_service(name, configuration, secrets)
    created, ready = current.get("latestCreatedRevision"), current.get("latestReadyRevision")
    condition: dict[str, Any] = {}
    if created:
        revisions = (
            gcp_client("run", "v2", configuration, secrets)
            .projects()
            .locations()
            .services()
            .revisions()
        )
        revision = call(
            revisions.get(name=f"{name}/revisions/{created.rsplit('/', 1)[-1]}"),
            f"reading Cloud Run revision {created}",
        )
        condition = _ready_condition(revision)
    state = condition.get("state")
    instances = cloud_run_instances(
        service.rsplit("/", 1)[-1], minutes, project, region, configuration, secrets
    )
    return {
        "service": name,
        "latest_created_revision": created,
        "latest_ready_revision": ready,
        "serving_latest": bool(created) and created == ready,
        "revision_ready": None if state is None else state == "CONDITION_SUCCEEDED",
        "revision_message": condition.get("message"),
        "instances": instances["instances"],
    }
