"""What a stop condition judges while the method runs: the long-running service's golden
path (its error rate, its latency against the baseline taken before the method, the
connections its pool holds) and, on staging, Cloud SQL's CPU over a window, an SLO's
burn rate and an alert policy's open alerts, from Cloud Monitoring.

Each probe returns `{"condition", "status", "value", "threshold", ...}` with `status`
one of `within`, `breached` or `unobserved` (nothing to judge by: never a reason to
stop). The kit's verification control samples them as chaostoolkit-addons safeguards
(`chaoskit.verification.stop_conditions`); they are ordinary probes and can be used as such.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.database import database_sessions
from chaoskit.targets.gcp.monitoring import cloud_sql_cpu, list_open_alerts, read_slo_burn_rate
from chaoskit.testbed.system import health_path

__all__ = [
    "alert_policy_open",
    "database_cpu_sustained",
    "golden_path_error_rate",
    "golden_path_latency",
    "service_pool_held",
    "slo_burn_rate",
]

_HINT = "the embedded testbed's control fills it in"


def _judged(
    condition: str, value: float | None, threshold: float, exempt: bool = False, **details: Any
) -> dict:
    """The sample as a stop condition reads it; `exempt`: within, whatever the value."""
    breached = value is not None and value > threshold and not exempt
    status = "unobserved" if value is None else "breached" if breached else "within"
    return {
        "condition": condition,
        "status": status,
        "value": value,
        "threshold": threshold,
        **details,
    }


def _requests(
    url: str, path: str, requests: int, timeout_s: float
) -> list[tuple[bool, float, str]]:
    """`requests` GETs of `<url><path>`, one after another: (succeeded, seconds, why it
    failed) each; an error or a non-2xx answer is a failure."""
    results = []
    # a fresh connection each: a service that closes after answering without saying so
    # would otherwise reset the next request on the old one (a race, not an error)
    with httpx.Client(timeout=timeout_s, headers={"Connection": "close"}) as client:
        for _ in range(requests):
            started = time.monotonic()
            try:
                answer = client.get(f"{url.rstrip('/')}{path}")
                ok, why = answer.is_success, f"HTTP {answer.status_code}"
            except httpx.HTTPError as error:
                ok, why = False, f"{type(error).__name__}: {error}"
            results.append((ok, time.monotonic() - started, "" if ok else why))
    return results


def _golden_path(
    url: str | None, requests: int, timeout_s: float, configuration: Configuration | None
) -> tuple[str, list[tuple[bool, float]]]:
    if not 0 < requests <= 100:
        raise KitError(f"requests={requests!r} is out of range: give 1 to 100")
    url = RunSettings.of(configuration).given_or_configured(
        url, "service_url", argument="url", hint=_HINT
    )
    path = health_path(configuration)
    return f"{url.rstrip('/')}{path}", _requests(url, path, requests, timeout_s)


@activity
def golden_path_error_rate(
    threshold_pct: float = 5.0,
    requests: int = 10,
    timeout_s: float = 5.0,
    url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Send `requests` requests to the long-running service's golden path (the system
    under test's `ready.http`, e.g. `/health`) and judge the share that failed.

    Arguments:
        threshold_pct: breached above this share of failed requests, in percent.
        requests: how many requests, 1 to 100.
        timeout_s: seconds each request may take; a slower one counts as failed.
        url: the service's base URL (default: the configuration's `service_url`).

    Returns `{"condition": "error_rate_pct", "status", "value", "threshold",
    "requests", "errors", "first_error" (why the first failed one failed, or None), "url"}`.
    """
    target, results = _golden_path(url, requests, timeout_s, configuration)
    failures = [why for ok, _, why in results if not ok]
    rate = round(100.0 * len(failures) / len(results), 2)
    return _judged(
        "error_rate_pct",
        rate,
        threshold_pct,
        requests=len(results),
        errors=len(failures),
        first_error=failures[0] if failures else None,
        url=target,
    )


@activity
def golden_path_latency(
    baseline_ms: float,
    threshold_pct: float = 200.0,
    floor_ms: float = 0.0,
    requests: int = 5,
    timeout_s: float = 5.0,
    url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """The golden path's median response time against its baseline.

    Arguments:
        baseline_ms: the median response time before the method, in milliseconds.
        threshold_pct: breached above this share of the baseline, in percent.
        floor_ms: and only when the median exceeds the baseline by more than this many
            milliseconds: on loopback a 2 ms baseline doubles from the machine's
            scheduling alone (0 on staging).
        requests: how many requests, 1 to 100; failed ones are the error rate's.
        timeout_s: seconds each request may take.
        url: the service's base URL (default: the configuration's `service_url`).

    Returns `{"condition": "latency_pct_of_baseline", "status", "value" (percent of the
    baseline), "threshold", "median_ms", "baseline_ms", "floor_ms", "url"}`; without a
    successful request it is `unobserved`.
    """
    target, results = _golden_path(url, requests, timeout_s, configuration)
    median_ms = _median_ms(results)
    value = None
    if median_ms is not None and baseline_ms > 0:
        value = round(100.0 * median_ms / baseline_ms, 1)
    under_floor = median_ms is not None and median_ms - baseline_ms <= floor_ms
    return _judged(
        "latency_pct_of_baseline",
        value,
        threshold_pct,
        exempt=under_floor,
        median_ms=median_ms,
        baseline_ms=baseline_ms,
        floor_ms=floor_ms,
        url=target,
    )


def _median_ms(results: list[tuple[bool, float]]) -> float | None:
    """The successful requests' median time, in milliseconds (None: none succeeded)."""
    times = [seconds for ok, seconds, _ in results if ok]
    return round(1000 * statistics.median(times), 2) if times else None


def golden_path_baseline_ms(
    configuration: Configuration | None, requests: int = 5, timeout_s: float = 5.0
) -> float | None:
    """The golden path's median response time now, in milliseconds (None: no request
    succeeded)."""
    _, results = _golden_path(None, requests, timeout_s, configuration)
    return _median_ms(results)


@activity
def service_pool_held(
    threshold_pct: float = 90.0,
    application_name: str | None = None,
    pool_capacity: int | None = None,
    database_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """The connections the long-running service holds, as a share of the most its pool
    may open (`pool_size + max_overflow`): overflow connections exist only while checked
    out, so above 90 % its pool is all but exhausted.

    Arguments:
        threshold_pct: breached above this share, in percent.
        application_name: the service's PostgreSQL application_name (default: the
            configuration's `service_application_name`, `service-testbed` on the testbed).
        pool_capacity: connections its pool may open (default: the configuration's
            `service_pool_capacity`).
        database_url: a superuser's DSN (default: `admin_database_url`).

    Returns `{"condition": "pool_pct", "status", "value", "threshold", "held",
    "capacity", "application_name"}`; `unobserved` when the database does not answer.
    """
    settings = RunSettings.of(configuration)
    application = settings.given_or_configured(
        application_name, "service_application_name", argument="application_name", hint=_HINT
    )
    capacity = settings.given_or_configured(
        pool_capacity, "service_pool_capacity", argument="pool_capacity", hint=_HINT
    )
    dsn = settings.given_or_configured(
        database_url, "admin_database_url", argument="database_url", hint=_HINT
    )
    try:
        held = database_sessions(dsn)["by_application"].get(application, 0)
    except KitError as error:
        return _judged(
            "pool_pct",
            None,
            threshold_pct,
            application_name=application,
            capacity=capacity,
            reason=str(error),
        )
    value = round(100.0 * held / int(capacity), 1) if int(capacity) > 0 else None
    return _judged(
        "pool_pct", value, threshold_pct, held=held, capacity=capacity, application_name=application
    )


@activity
def database_cpu_sustained(
    threshold_pct: float = 80.0,
    window_s: float = 300.0,
    instance: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Cloud SQL's CPU utilisation over the newest `window_s` Cloud Monitoring shows: its
    lowest point there, so a breach means above the threshold all along.

    Monitoring samples the CPU every minute (`gcp_metric_period_s`) and shows a point up
    to 165 s later, so the window is the newest visible one, dated by its points' own
    end times: a breach is seen at most the window, a minute of sampling and the lag
    after the CPU went above the threshold for good.

    Arguments:
        threshold_pct: breached when every point of the window is above it, in percent.
        window_s: the window, in seconds.
        instance: the Cloud SQL instance (default: the configuration's
            `gcp_cloud_sql_instance`).

    Returns `{"condition": "cpu_pct", "status", "value" (the window's lowest point, in
    percent), "threshold", "window_s", "points", "latest", "newest_end"}`;
    `unobserved` until the window holds one point per sampling period.
    """
    settings = RunSettings.of(configuration)
    instance = settings.given_or_configured(
        instance,
        "gcp_cloud_sql_instance",
        argument="instance",
        hint="the staging profile sets it under gcp",
    )
    cpu = cloud_sql_cpu(instance, window_s, configuration=configuration, secrets=secrets)
    points = cpu["points"]
    period_s = settings.gcp.metric_period_s
    covered = len(points) >= max(1, round(window_s / period_s))
    lowest = round(100 * min(points), 1) if points and covered else None
    latest = round(100 * points[0], 1) if points else None
    return _judged(
        "cpu_pct",
        lowest,
        threshold_pct,
        window_s=window_s,
        points=len(points),
        latest=latest,
        newest_end=cpu["newest_end"],
    )


@activity
def slo_burn_rate(
    slo: str,
    threshold: float,
    lookback_s: float = 300.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """An SLO's burn rate over `lookback_s`, from Cloud Monitoring: the query
    chaostoolkit-google-cloud-platform's `get_slo_burn_rate` makes, through the kit's
    client (`gcp.api_endpoints`). The newest point Monitoring shows is judged: the SLO's
    data comes from metrics sampled every minute and shown up to three minutes later.

    Arguments:
        slo: the SLO, `projects/P/services/S/serviceLevelObjectives/ID`.
        threshold: breached above this burn rate (1: the error budget lasts exactly its
            period; 10: it is spent in a tenth of it).
        lookback_s: the burn rate's lookback, in seconds (chaosgcp's default: 300).

    Returns `{"condition": "slo_burn_rate", "status", "value" (the newest burn rate),
    "threshold", "slo", "goal", "lookback_s", "newest_end"}`; `unobserved` while
    Monitoring shows no point.
    """
    read = read_slo_burn_rate(slo, lookback_s, configuration=configuration, secrets=secrets)
    value = round(read["points"][0], 4) if read["points"] else None
    return _judged(
        "slo_burn_rate",
        value,
        threshold,
        slo=read["slo"],
        goal=read["goal"],
        lookback_s=lookback_s,
        newest_end=read["newest_end"],
    )


@activity
def alert_policy_open(
    policy: str,
    threshold: int = 0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """A Cloud Monitoring alert policy's open alerts (incidents), from
    `projects.alerts.list`. Monitoring opens one once the policy's condition holds on
    the points it shows (minutes after the metric crossed: its sampling, its lag and the
    condition's duration).

    Arguments:
        policy: the alert policy, `projects/P/alertPolicies/ID`.
        threshold: breached above this many open alerts (0: any open alert).

    Returns `{"condition": "alert_policy", "status", "value" (open alerts), "threshold",
    "policy", "display_name", "alerts" (the newest: name and open_time)}`.
    """
    found = list_open_alerts(policy, configuration=configuration, secrets=secrets)
    return _judged(
        "alert_policy",
        found["open"],
        threshold,
        policy=found["policy"],
        display_name=found["display_name"],
        alerts=found["alerts"],
    )
