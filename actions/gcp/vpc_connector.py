"""Serverless VPC Access: change a connector's scaling, or point the Cloud Run service at
a deliberately small connector, and undo either.

chaostoolkit-google-cloud-platform has no Serverless VPC Access module; this calls the
`vpcaccess v1` REST API. `connectors.patch` accepts `machineType`, `minInstances` and
`maxInstances`, within 2..10 instances, and a connector never scales in: the API refuses
a lower instance count, and so does this module, before sending anything. A change of
either bound sends both.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.actions.undo import remember_first, undo
from chaoskit.kit.errors import KitError, activity
from chaoskit.targets.gcp.api import call, gcp_client, project_and_region, wait_for_operation
from chaoskit.targets.gcp.resources import connector_name

__all__ = ["restore_vpc_connector", "set_vpc_connector_scaling"]

MACHINE_TYPES = ("f1-micro", "e2-micro", "e2-standard-4")
KIND = "gcp-vpc-connector"
_BOUNDS = {"minInstances": 2, "maxInstances": 10}  # the API's defaults
_FIELDS = {
    "machine_type": "machineType",
    "min_instances": "minInstances",
    "max_instances": "maxInstances",
}


def describe_connector(
    name: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict:
    connectors = (
        gcp_client("vpcaccess", "v1", configuration, secrets).projects().locations().connectors()
    )
    return call(connectors.get(name=name), f"reading VPC connector {name}")


def _patch(
    name: str, body: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> dict:
    client = gcp_client("vpcaccess", "v1", configuration, secrets)
    connectors = client.projects().locations().connectors()
    what = f"updating VPC connector {name}"
    operation = call(connectors.patch(name=name, updateMask=",".join(body), body=body), what)
    operations = client.projects().locations().operations()
    wait_for_operation(lambda: operations.get(name=operation["name"]), what, configuration)
    return describe_connector(name, configuration, secrets)


def _check(current: dict[str, Any], changes: dict[str, Any]) -> None:
    minimum = changes.get("minInstances", current.get("minInstances", 2))
    maximum = changes.get("maxInstances", current.get("maxInstances", 10))
    if not 2 <= minimum < maximum <= 10:
        raise KitError(
            f"min_instances={minimum}, max_instances={maximum}: a connector runs 2 to 10 "
            "instances, min below max"
        )
    for field, api in (("min_instances", "minInstances"), ("max_instances", "maxInstances")):
        if api in changes and changes[api] < current.get(api, 0):
            raise KitError(
                f"{field}={changes[api]} is below the connector's {current[api]}: the Serverless "
                "VPC Access API never scales a connector in; to shrink capacity, point the "
                "service at a smaller connector (chaoskit.actions.gcp.cloud_run.use_vpc_connector)"
            )
    machine = changes.get("machineType")
    if machine is not None and machine not in MACHINE_TYPES:
        raise KitError(f"machine_type={machine!r}: use one of {', '.join(MACHINE_TYPES)}")


@activity
def set_vpc_connector_scaling(
    connector: str,
    machine_type: str | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Change a Serverless VPC Access connector's machine type or instance range.

    Arguments:
        connector: the connector's name (or full resource name).
        machine_type: f1-micro, e2-micro or e2-standard-4.
        min_instances, max_instances: within 2..10; never below the current values
            (the API does not scale a connector in).
        project, region: default to the configuration's gcp_project_id and gcp_region.

    Returns the connector as the API describes it after the change.
    `restore_vpc_connector` puts back the machine type; instances cannot come back down.
    """
    project, region = project_and_region(configuration, project, region)
    name = connector_name(connector, project, region)
    arguments = {
        "machine_type": machine_type,
        "min_instances": min_instances,
        "max_instances": max_instances,
    }
    changes = {_FIELDS[k]: v for k, v in arguments.items() if v is not None}
    if not changes:
        raise KitError(
            "set_vpc_connector_scaling needs machine_type, min_instances or max_instances"
        )
    current = describe_connector(name, configuration, secrets)
    _check(current, changes)
    # both bounds, as Google's Terraform provider sends them: the API checks min < max
    # on what it is sent
    changes = {
        **{key: current.get(key, default) for key, default in _BOUNDS.items()},
        **changes,
    }

    def save() -> Any:
        baseline = current.get("machineType")

        def restore() -> dict[str, Any]:
            now = describe_connector(name, configuration, secrets)
            if baseline and baseline != now.get("machineType"):
                # both bounds with it, as the scaling does: the API checks min < max on
                # what it is sent, and the instances stay as they are (never scaled in)
                bounds = {key: now.get(key, default) for key, default in _BOUNDS.items()}
                _patch(name, {**bounds, "machineType": baseline}, configuration, secrets)
            return {
                "machine_type": baseline,
                "instances_not_restorable": "a connector never scales in",
            }

        return restore

    remember_first(KIND, name, save)
    return _patch(name, changes, configuration, secrets)


@activity
def restore_vpc_connector(
    connector: str,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Put back the machine type the connector had before this experiment; idempotent.
    Returns `{"restored": bool, ...}`."""
    project, region = project_and_region(configuration, project, region)
    restored = undo(KIND, connector_name(connector, project, region))
    return {"restored": restored is not None, **(restored or {})}
