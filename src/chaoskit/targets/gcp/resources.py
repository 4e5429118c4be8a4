"""Google Cloud resource names: a short name in the configuration's project and region,
or a full resource name given as is (a connector of a Shared VPC host project, say)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Located", "connector_name", "located", "service_name"]


class Located(NamedTuple):
    """A regional resource's project, region and short name."""

    project: str
    region: str
    name: str


def located(resource: str, project: str, region: str) -> Located:
    """`projects/P/locations/R/<kind>/N` as (P, R, N); a short name as (project, region,
    name)."""
    parts = resource.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations":
        return Located(parts[1], parts[3], parts[5])
    return Located(project, region, resource)


def service_name(service: str, project: str, region: str) -> str:
    return (
        service
        if service.startswith("projects/")
        else f"projects/{project}/locations/{region}/services/{service}"
    )


def connector_name(connector: str, project: str, region: str) -> str:
    where = located(connector, project, region)
    return f"projects/{where.project}/locations/{where.region}/connectors/{where.name}"
