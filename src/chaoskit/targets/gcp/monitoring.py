"""The connector's, Cloud SQL's and Cloud Run's load, from Cloud Monitoring (API v3,
`projects.timeSeries.list`, as chaostoolkit-google-cloud-platform's `get_metrics`), and
the team's own signals there: an SLO's burn rate (chaosgcp's `get_slo_burn_rate` query)
and an alert policy's open alerts (`projects.alerts.list`).

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
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.gcp.api import call, gcp_client, project_and_region
from chaoskit.targets.gcp.resources import located

__all__ = [
    "cloud_run_instances",
    "cloud_sql_backends",
    "cloud_sql_cpu",
    "connector_metrics",
    "get_alert_policy",
    "get_service_level_objective",
    "list_open_alerts",
    "read_slo_burn_rate",
]

CONNECTOR_CPU = "vpcaccess.googleapis.com/connector/cpu/utilizations"
CONNECTOR_INSTANCES = "vpcaccess.googleapis.com/connector/instances"
SQL_BACKENDS = "cloudsql.googleapis.com/database/postgresql/num_backends"
SQL_CPU = "cloudsql.googleapis.com/database/cpu/utilization"
RUN_INSTANCES = "run.googleapis.com/container/instance_count"
_ALERT_PAGE_SIZE = 100
_ALERT_PAGES = 10  # a policy with more open alerts than this is breached all the same
_ALERTS_KEPT = 3  # in a sample, the newest open alerts' names and opening times


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
    gcp = RunSettings.of(configuration).gcp
    return gcp.metric_lag_s + 2 * gcp.metric_period_s


def _points(series: dict[str, Any]) -> list[Point]:
    """A time series' points, newest first."""
    points = [
        Point(datetime.fromisoformat(p["interval"]["endTime"].replace("Z", "+00:00")), v)
        for p in series.get("points") or []
        if (v := _value(p)) is not None
    ]
    return sorted(points, key=lambda p: p.end, reverse=True)


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
    period_s = RunSettings.of(configuration).gcp.metric_period_s
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
    return [_points(one) for one in answer.get("timeSeries") or []]


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
    started = RunSettings.of(configuration).run_started_at
    if started:  # a point's whole period after the start
        period = timedelta(seconds=RunSettings.of(configuration).gcp.metric_period_s)
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
    cpu = _latest_per_series(
        where.project,
        CONNECTOR_CPU,
        selector,
        "ALIGN_PERCENTILE_99",
        minutes,
        configuration,
        secrets,
    )
    instances = _latest_per_series(
        where.project, CONNECTOR_INSTANCES, selector, "ALIGN_MAX", minutes, configuration, secrets
    )
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
    counts = _latest_per_series(
        project, RUN_INSTANCES, where, "ALIGN_MAX", minutes, configuration, secrets
    )
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
    backends = _latest_per_series(
        project, SQL_BACKENDS, where, "ALIGN_MAX", minutes, configuration, secrets
    )
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


def _project_of(name: str) -> str:
    """`P` of a resource name `projects/P/...`."""
    return name.split("/")[1]


def get_service_level_objective(
    slo: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, Any]:
    """The SLO `projects/P/services/S/serviceLevelObjectives/ID` as Monitoring keeps it
    (`services.serviceLevelObjectives.get`); KitError names it when it cannot be read."""
    objectives = gcp_client("monitoring", "v3", configuration, secrets).services()
    request = objectives.serviceLevelObjectives().get(name=slo)
    return call(request, f"reading SLO {slo}")


def read_slo_burn_rate(
    slo: str,
    lookback_s: float = 300.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The SLO's burn rate over `lookback_s` seconds, as chaosgcp's `get_slo_burn_rate`
    asks for it: the SLO read, then `timeSeries.list` with the filter
    `select_slo_burn_rate("<its name as Monitoring gives it>", "<lookback>s")` over
    Monitoring's lag and two sampling periods (the newest points Monitoring shows; the
    SLO's data comes from metrics sampled every minute and shown minutes later).

    Returns `{"slo", "goal", "lookback_s", "points" (newest first), "newest_end"}`."""
    objective = get_service_level_objective(slo, configuration, secrets)
    end = datetime.now(UTC)
    start = end - timedelta(seconds=_default_window_s(configuration))
    series = gcp_client("monitoring", "v3", configuration, secrets).projects().timeSeries()
    request = series.list(
        name=f"projects/{_project_of(slo)}",
        filter=f'select_slo_burn_rate("{objective["name"]}", "{lookback_s:g}s")',
        interval_startTime=start.isoformat(),
        interval_endTime=end.isoformat(),
    )
    answer = call(request, f"reading the burn rate of SLO {slo} from Cloud Monitoring")
    found = [_points(one) for one in answer.get("timeSeries") or []]
    points = sorted((p for one in found for p in one), key=lambda p: p.end, reverse=True)
    return {
        "slo": objective["name"],
        "goal": objective.get("goal"),
        "lookback_s": lookback_s,
        "points": [p.value for p in points],
        "newest_end": points[0].end.isoformat() if points else None,
    }


def get_alert_policy(
    policy: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, Any]:
    """The alert policy `projects/P/alertPolicies/ID` (`alertPolicies.get`); KitError
    names it when it cannot be read."""
    policies = gcp_client("monitoring", "v3", configuration, secrets).projects().alertPolicies()
    return call(policies.get(name=policy), f"reading alert policy {policy}")


def list_open_alerts(
    policy: str, configuration: Configuration | None = None, secrets: Secrets | None = None
) -> dict[str, Any]:
    """The alert policy's open alerts (its incidents): the policy read, then
    `projects.alerts.list` filtered by `state = "OPEN" AND policy.name = "<its name as
    Monitoring gives it>"`, every page (at most `_ALERT_PAGES`).

    Returns `{"policy", "display_name", "enabled", "open" (how many), "alerts" (the
    newest few: name and openTime)}`."""
    found = get_alert_policy(policy, configuration, secrets)
    alerts = gcp_client("monitoring", "v3", configuration, secrets).projects().alerts()
    request = alerts.list(
        parent=f"projects/{_project_of(policy)}",
        filter=f'state = "OPEN" AND policy.name = "{found["name"]}"',
        pageSize=_ALERT_PAGE_SIZE,
    )
    opened: list[dict[str, Any]] = []
    for _ in range(_ALERT_PAGES):
        page = call(request, f"listing the open alerts of alert policy {policy}")
        opened += page.get("alerts") or []
        request = alerts.list_next(request, page)
        if request is None:
            break
    opened.sort(key=lambda a: a.get("openTime") or "", reverse=True)
    return {
        "policy": found["name"],
        "display_name": found.get("displayName"),
        "enabled": found.get("enabled"),
        "open": len(opened),
        "alerts": [
            {"name": a.get("name"), "open_time": a.get("openTime")} for a in opened[:_ALERTS_KEPT]
        ],
    }
