"""Cloud SQL: restart the instance, and change its `max_connections` flag and back,
through the SQL Admin API v1 (the API chaostoolkit-google-cloud-platform's `sql` module
uses)."""

from __future__ import annotations

import copy
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.actions.undo import remember_first, undo
from chaoskit.kit.errors import KitError, activity
from chaoskit.targets.gcp.api import call, gcp_client, project_and_region, wait_for_operation

__all__ = [
    "restart_cloud_sql",
    "restore_cloud_sql_max_connections",
    "set_cloud_sql_max_connections",
]

KIND = "gcp-cloud-sql-flags"
MAX_CONNECTIONS_RANGE = (14, 262143)  # PostgreSQL on Cloud SQL


def _project(configuration: Configuration | None, project: str | None) -> str:
    return project or project_and_region(configuration, None, "-")[0]


def _run(
    project: str,
    instance: str,
    request: Any,
    what: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    operations = gcp_client("sqladmin", "v1", configuration, secrets).operations()
    operation = call(request, what)
    return wait_for_operation(
        lambda: operations.get(project=project, operation=operation["name"]),
        what,
        configuration,
        is_done=lambda op: op.get("status") == "DONE",
    )


def _instance(
    project: str, instance: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict:
    instances = gcp_client("sqladmin", "v1", configuration, secrets).instances()
    return call(
        instances.get(project=project, instance=instance), f"reading Cloud SQL instance {instance}"
    )


@activity
def restart_cloud_sql(
    instance: str,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Restart the Cloud SQL instance (every connection is cut) and wait until it is back.
    Returns the finished operation."""
    project = _project(configuration, project)
    instances = gcp_client("sqladmin", "v1", configuration, secrets).instances()
    request = instances.restart(project=project, instance=instance)
    return _run(
        project,
        instance,
        request,
        f"restarting Cloud SQL instance {instance}",
        configuration,
        secrets,
    )


def _set_flags(
    project: str,
    instance: str,
    flags: list[dict[str, str]],
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> None:
    instances = gcp_client("sqladmin", "v1", configuration, secrets).instances()
    body = {"settings": {"databaseFlags": flags}}
    request = instances.patch(project=project, instance=instance, body=body)
    _run(
        project, instance, request, f"setting database flags of {instance}", configuration, secrets
    )


@activity
def set_cloud_sql_max_connections(
    max_connections: int,
    instance: str,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Set the instance's `max_connections` database flag (Cloud SQL restarts it).

    The other flags are kept; the flags found before the experiment's first change are
    saved for `restore_cloud_sql_max_connections`. Returns `{"max_connections",
    "previous"}` (`previous` is null when the flag was not set: the tier's default).
    """
    low, high = MAX_CONNECTIONS_RANGE
    if not isinstance(max_connections, int) or not low <= max_connections <= high:
        raise KitError(
            f"max_connections={max_connections!r} is out of range: Cloud SQL for PostgreSQL "
            f"takes {low} to {high}"
        )
    project = _project(configuration, project)
    flags = copy.deepcopy(
        (_instance(project, instance, configuration, secrets).get("settings") or {}).get(
            "databaseFlags"
        )
        or []
    )
    previous = next((f["value"] for f in flags if f["name"] == "max_connections"), None)

    def save() -> Any:
        baseline = copy.deepcopy(flags)

        def restore() -> dict[str, Any]:
            _set_flags(project, instance, baseline, configuration, secrets)
            return {"max_connections": previous}

        return restore

    remember_first(KIND, f"{project}/{instance}", save)
    changed = [f for f in flags if f["name"] != "max_connections"]
    changed.append({"name": "max_connections", "value": str(max_connections)})
    _set_flags(project, instance, changed, configuration, secrets)
    return {"max_connections": max_connections, "previous": previous}


@activity
def restore_cloud_sql_max_connections(
    instance: str,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Put back the database flags found before `set_cloud_sql_max_connections`;
    idempotent. Returns `{"restored": bool, "max_connections": the restored value}`."""
    project = _project(configuration, project)
    restored = undo(KIND, f"{project}/{instance}")
    return {"restored": restored is not None, **(restored or {})}
