"""Cloud Run: force a cold start (a new revision), and move the service to another
Serverless VPC Access connector and back (Cloud Run Admin API v2)."""

from __future__ import annotations

import copy
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.actions.undo import remember_first, undo
from chaoskit.kit.errors import activity
from chaoskit.targets.gcp.api import project_and_region
from chaoskit.targets.gcp.cloud_run import (
    cold_start_changes,
    get_service,
    refuse_when_pinned,
    update_service,
)
from chaoskit.targets.gcp.resources import connector_name, service_name

__all__ = ["force_cold_start", "restore_service_vpc_access", "use_vpc_connector"]

KIND = "gcp-cloud-run-vpc-access"


def _summary(service: dict[str, Any]) -> dict[str, Any]:
    template = service.get("template") or {}
    return {
        "service": service.get("name"),
        "latest_created_revision": service.get("latestCreatedRevision"),
        "latest_ready_revision": service.get("latestReadyRevision"),
        "vpc_access": template.get("vpcAccess"),
    }


@activity
def force_cold_start(
    service: str,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Roll out a new revision of the image the service runs (its digest, not its tag),
    so that every instance starts cold, as after a deployment; wait for it. Returns
    the service's revisions afterwards, and `left_behind`: what the service's template
    keeps (the kit's revision name, images by digest, the cold-start label; `traffic`
    says when the revision serves no request) and the gcloud command that restores it."""
    project, region = project_and_region(configuration, project, region)
    name = service_name(service, project, region)
    after, left_behind = update_service(name, cold_start_changes, configuration, secrets)
    return {**_summary(after), "left_behind": left_behind}


@activity
def use_vpc_connector(
    service: str,
    connector: str,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Point the service's egress at another Serverless VPC Access connector (say a
    deliberately small one), which makes a new revision.

    `connector` is a name in the same region, or a full resource name (a Shared VPC
    host project's: the Cloud Run service agent needs roles/vpcaccess.user there). The
    service's previous `vpcAccess` is saved for `restore_service_vpc_access`. Refused
    before any change when the service's traffic is pinned to a revision: the new one
    would serve no request.
    """
    project, region = project_and_region(configuration, project, region)
    name = service_name(service, project, region)
    current = get_service(name, configuration, secrets)

    def save() -> Any:
        previous = copy.deepcopy((current.get("template") or {}).get("vpcAccess"))

        def restore() -> dict[str, Any]:
            back = {"vpcAccess": previous}
            return _summary(update_service(name, lambda _: back, configuration, secrets)[0])

        return restore

    vpc_access = copy.deepcopy((current.get("template") or {}).get("vpcAccess") or {})
    moved = {"vpcAccess": {**vpc_access, "connector": connector_name(connector, project, region)}}
    refuse_when_pinned(name, current)
    remember_first(KIND, name, save)
    return _summary(update_service(name, lambda _: moved, configuration, secrets)[0])


@activity
def restore_service_vpc_access(
    service: str,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Put back the connector the service used before `use_vpc_connector`; idempotent.
    Returns `{"restored": bool, ...the service's revisions and vpc_access}`."""
    project, region = project_and_region(configuration, project, region)
    restored = undo(KIND, service_name(service, project, region))
    return {"restored": restored is not None, **(restored or {})}
