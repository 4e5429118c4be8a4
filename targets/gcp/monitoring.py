"""The connector's and Cloud SQL's load, from Cloud Monitoring (API v3,
`projects.timeSeries.list`, as chaostoolkit-google-cloud-platform's `get_metrics`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.targets.gcp.api import call, gcp_client, project_and_region

__all__ = ["cloud_run_instances", "cloud_sql_backends", "cloud_sql_cpu", "connector_metrics"]

CONNECTOR_CPU = "vpcaccess.googleapis.com/connector/cpu/utilizations"
CONNECTOR_INSTANCES = "vpcaccess.googleapis.com/connector/instances"
SQL_BACKENDS = "cloudsql.googleapis.com/database/postgresql/num_backends"
SQL_CPU = "cloudsql.googleapis.com/database/cpu/utilization"
RUN_INSTANCES = "run.googleapis.com/container/instance_count"


def _value(point: dict[str, Any]) -> float | None:
    value = point.get("value") or {}
    for key in ("doubleValue", "int64Value"):
        if key in value:
            return float(value[key])
    distribution = value.get("distributionValue")
    return float(distribution.get("mean", 0.0)) if distribution else None


def _series(
    project: str,
    metric: str,
    resource_filter: str,
    minutes: float,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[list[float]]:
    """Each time series of `metric` (one per resource) over the last `minutes`: its
    values, newest first."""
    end = datetime.now(UTC)
    series = gcp_client("monitoring", "v3", configuration, secrets).projects().timeSeries()
    request = series.list(
        name=f"projects/{project}",
        filter=f'metric.type = "{metric}" AND {resource_filter}',
        interval_startTime=(end - timedelta(minutes=minutes)).isoformat(),
        interval_endTime=end.isoformat(),
        view="FULL",
    )
    answer = call(request, f"reading {metric} from Cloud Monitoring")
    return [
        [v for v in (_value(p) for p in one.get("points") or []) if v is not None]
        for one in answer.get("timeSeries") or []
    ]


def _latest_per_series(
    project: str,
    metric: str,
    resource_filter: str,
    minutes: float,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[float]:
    """The most recent value of each time series of `metric` (one per resource)."""
    series = _series(project, metric, resource_filter, minutes, configuration, secrets)
    return [values[0] for values in series if values]


def _cloud_sql(
    instance: str, project: str | None, configuration: Configuration | None
) -> tuple[str, str]:
    """The project, and the filter that selects the instance's time series."""
    project = project or project_and_region(configuration, None, "-")[0]
    return project, f'resource.labels.database_id = "{project}:{instance}"'


@activity
def connector_metrics(
    connector: str,
    minutes: float = 5.0,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The connector's latest CPU utilisation (0..1, the busiest instance) and instance
    count, over the last `minutes`. Returns `{"connector", "utilisation", "instances"}`
    (null where Cloud Monitoring has no point yet)."""
    project, region = project_and_region(configuration, project, region)
    where = (
        f'resource.labels.connector_name = "{connector}" AND resource.labels.location = "{region}"'
    )
    cpu = _latest_per_series(project, CONNECTOR_CPU, where, minutes, configuration, secrets)
    instances = _latest_per_series(
        project, CONNECTOR_INSTANCES, where, minutes, configuration, secrets
    )
    return {
        "connector": connector,
        "utilisation": max(cpu) if cpu else None,
        "instances": int(sum(instances)) if instances else None,
    }


@activity
def cloud_run_instances(
    service: str,
    minutes: float = 5.0,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The Cloud Run service's container instances (all revisions, all states), latest
    over the last `minutes`. Returns `{"service", "instances"}` (null without a point)."""
    project, region = project_and_region(configuration, project, region)
    where = f'resource.labels.service_name = "{service}" AND resource.labels.location = "{region}"'
    counts = _latest_per_series(project, RUN_INSTANCES, where, minutes, configuration, secrets)
    return {"service": service, "instances": int(sum(counts)) if counts else None}


@activity
def cloud_sql_backends(
    instance: str,
    max_connections: int,
    minutes: float = 5.0,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Cloud SQL's connections in use (PostgreSQL backends, all databases) over
    `max_connections` (162 on db-custom-2-7680, or the flag's value).
    Returns `{"instance", "backends", "max_connections", "utilisation"}`."""
    project, where = _cloud_sql(instance, project, configuration)
    backends = _latest_per_series(project, SQL_BACKENDS, where, minutes, configuration, secrets)
    total = int(sum(backends)) if backends else None
    return {
        "instance": instance,
        "backends": total,
        "max_connections": max_connections,
        "utilisation": None if total is None else round(total / max_connections, 4),
    }


@activity
def cloud_sql_cpu(
    instance: str,
    window_s: float = 300.0,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Cloud SQL's CPU utilisation (0..1) over the last `window_s` seconds.
    Returns `{"instance", "window_s", "points"}`, the points newest first."""
    project, where = _cloud_sql(instance, project, configuration)
    series = _series(project, SQL_CPU, where, window_s / 60, configuration, secrets)
    return {"instance": instance, "window_s": window_s, "points": series[0] if series else []}
