"""The connector's, Cloud SQL's and Cloud Run's load, from Cloud Monitoring (API v3,
`projects.timeSeries.list`, as chaostoolkit-google-cloud-platform's `get_metrics`).

Monitoring samples each of these metrics once a minute and shows a point only up to
165 s (Cloud SQL) or 180 s (the connector, Cloud Run) after it was taken, so every read
asks for points aligned to the sampling period (`gcp_metric_period_s`, 60: Monitoring
refuses less) over a window that reaches back past that lag (`gcp_metric_lag_s`, 180),
and dates each point by its own `interval.endTime`, never by when it was read.

Within a run, the load (the connector's, Cloud SQL's backends, Cloud Run's instances)
counts only points sampled since the run started (`run_started_at`): for minutes after
a run, Monitoring still shows its pressure, which the next run did not apply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.targets.gcp.api import call, gcp_client, gcp_seconds, project_and_region
from chaoskit.targets.gcp.resources import located

__all__ = ["cloud_run_instances", "cloud_sql_backends", "cloud_sql_cpu", "connector_metrics"]

CONNECTOR_CPU = "vpcaccess.googleapis.com/connector/cpu/utilizations"
CONNECTOR_INSTANCES = "vpcaccess.googleapis.com/connector/instances"
SQL_BACKENDS = "cloudsql.googleapis.com/database/postgresql/num_backends"
SQL_CPU = "cloudsql.googleapis.com/database/cpu/utilization"
RUN_INSTANCES = "run.googleapis.com/container/instance_count"


class Point(NamedTuple):
    end: datetime  # the end of the point's aligned period
    value: float


def _value(point: dict[str, Any]) -> float | None:
    value = point.get("value") or {}
    for key in ("doubleValue", "int64Value"):
        if key in value:
            return float(value[key])
    return None


def _default_window_s(configuration: Configuration | None) -> float:
    """Long enough to hold a visible point: the lag, and two sampling periods."""
    return gcp_seconds(configuration, "metric_lag_s") + 2 * gcp_seconds(
        configuration, "metric_period_s"
    )


def _series(
    project: str,
    metric: str,
    resource_filter: str,
    window_s: float,
    aligner: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[list[Point]]:
    """Each time series of `metric` (one per resource, or per label) over the last
    `window_s` seconds, aligned by `aligner` over the sampling period: its points,
    newest first."""
    end = datetime.now(UTC)
    period_s = gcp_seconds(configuration, "metric_period_s")
    series = gcp_client("monitoring", "v3", configuration, secrets).projects().timeSeries()
    request = series.list(
        name=f"projects/{project}",
        filter=f'metric.type = "{metric}" AND {resource_filter}',
        interval_startTime=(end - timedelta(seconds=window_s)).isoformat(),
        interval_endTime=end.isoformat(),
        aggregation_alignmentPeriod=f"{period_s:g}s",
        aggregation_perSeriesAligner=aligner,
        view="FULL",
    )
    answer = call(request, f"reading {metric} from Cloud Monitoring")
    found = []
    for one in answer.get("timeSeries") or []:
        points = [
            Point(datetime.fromisoformat(p["interval"]["endTime"].replace("Z", "+00:00")), v)
            for p in one.get("points") or []
            if (v := _value(p)) is not None
        ]
        found.append(sorted(points, key=lambda p: p.end, reverse=True))
    return found


def _latest_per_series(
    project: str,
    metric: str,
    resource_filter: str,
    aligner: str,
    minutes: float | None,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[float]:
    """The newest visible value of each time series of `metric` (one per resource),
    sampled since the run started, if one did."""
    window_s = _default_window_s(configuration) if minutes is None else 60 * minutes
    series = _series(project, metric, resource_filter, window_s, aligner, configuration, secrets)
    started = (configuration or {}).get("run_started_at")
    if started:  # a point's whole period after the start
        period = timedelta(seconds=gcp_seconds(configuration, "metric_period_s"))
        since = datetime.fromtimestamp(float(started), UTC) + period
        series = [[p for p in points if p.end >= since] for points in series]
    return [points[0].value for points in series if points]


def _cloud_sql(
    instance: str, project: str | None, configuration: Configuration | None
) -> tuple[str, str]:
    """The project, and the filter that selects the instance's time series."""
    project = project or project_and_region(configuration, None, "-")[0]
    return project, f'resource.labels.database_id = "{project}:{instance}"'


@activity
def connector_metrics(
    connector: str,
    minutes: float | None = None,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The connector's latest CPU utilisation (0..1: the 99th percentile across its
    instances, so that one hot instance counts) and instance count, over the last
    `minutes` (default: Monitoring's lag and two sampling periods).

    `connector` is a name in the configuration's project and region, or a full resource
    name (a Shared VPC host project's connector: its metrics are in that project).
    Returns `{"connector", "utilisation", "instances"}` (null where Cloud Monitoring has
    no point yet)."""
    project, region = project_and_region(configuration, project, region)
    where = located(connector, project, region)
    selector = (
        f'resource.labels.connector_name = "{where.name}" AND '
        f'resource.labels.location = "{where.region}"'
    )
    cpu = _latest_per_series(where.project, CONNECTOR_CPU, selector, "ALIGN_PERCENTILE_99",
                             minutes, configuration, secrets)  # fmt: skip
    instances = _latest_per_series(where.project, CONNECTOR_INSTANCES, selector, "ALIGN_MAX",
                                   minutes, configuration, secrets)  # fmt: skip
    return {
        "connector": connector,
        "utilisation": max(cpu) if cpu else None,
        "instances": int(sum(instances)) if instances else None,
    }


@activity
def cloud_run_instances(
    service: str,
    minutes: float | None = None,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The Cloud Run service's container instances (all revisions, all states), latest
    over the last `minutes` (default: Monitoring's lag and two sampling periods).
    Returns `{"service", "instances"}` (null without a point)."""
    project, region = project_and_region(configuration, project, region)
    where = f'resource.labels.service_name = "{service}" AND resource.labels.location = "{region}"'
    counts = _latest_per_series(project, RUN_INSTANCES, where, "ALIGN_MAX", minutes,
                                configuration, secrets)  # fmt: skip
    return {"service": service, "instances": int(sum(counts)) if counts else None}


@activity
def cloud_sql_backends(
    instance: str,
    max_connections: int,
    minutes: float | None = None,
    project: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Cloud SQL's connections in use (PostgreSQL backends, all databases: the most in
    the newest sampled minute) over `max_connections` (162 on db-custom-2-7680, or the
    flag's value). Returns `{"instance", "backends", "max_connections", "utilisation"}`."""
    project, where = _cloud_sql(instance, project, configuration)
    backends = _latest_per_series(project, SQL_BACKENDS, where, "ALIGN_MAX", minutes,
                                  configuration, secrets)  # fmt: skip
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
    """Cloud SQL's CPU utilisation (0..1) over the newest `window_s` seconds that
    Monitoring shows: the points (one per sampling period) whose end lies within
    `window_s` of the newest visible point's, read over the window and Monitoring's lag.

    Returns `{"instance", "window_s", "points", "newest_end"}`: the points newest first,
    and the end of the newest (ISO 8601; null without a point)."""
    project, where = _cloud_sql(instance, project, configuration)
    reach_s = window_s + _default_window_s(configuration)
    series = _series(project, SQL_CPU, where, reach_s, "ALIGN_MEAN", configuration, secrets)
    points = series[0] if series else []
    newest = points[0].end if points else None
    window = [p.value for p in points if newest - p.end < timedelta(seconds=window_s)]
    return {
        "instance": instance,
        "window_s": window_s,
        "points": window,
        "newest_end": newest and newest.isoformat(),
    }
