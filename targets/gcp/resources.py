"""Google Cloud resource names: a short name in the configuration's project and region,
or a full resource name given as is."""

from __future__ import annotations

__all__ = ["connector_name", "service_name"]


def service_name(service: str, project: str, region: str) -> str:
    return (
        service
        if service.startswith("projects/")
        else f"projects/{project}/locations/{region}/services/{service}"
    )


def connector_name(connector: str, project: str, region: str) -> str:
    return (
        connector
        if connector.startswith("projects/")
        else f"projects/{project}/locations/{region}/connectors/{connector}"
    )
