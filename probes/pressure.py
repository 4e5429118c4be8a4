"""Compound pressure and early warning: the incident's test plan's monitoring, as probes.

Three indicators: the connector's utilisation (active over capacity), the database's
(connections in use over `max_connections`, Cloud SQL's "pool"), and connection
establishment time. Thresholds default to the staging figures (70 %, 80 %, 35 s); the
embedded profile passes compressed ones. On staging the connector's utilisation is its
busiest instance's CPU utilisation, from Cloud Monitoring (Serverless VPC Access
publishes no connection count).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError, activity
from chaoskit.probes.database import connection_time
from chaoskit.targets.load import connector_load, database_load

__all__ = ["compound_pressure", "early_warning"]

RISK_LEVELS = ("low", "elevated", "high_risk")


def _utilisations(
    configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, float | None]:
    connector = connector_load(configuration, secrets)
    database = database_load(configuration, secrets)
    return {
        "vpc_connector_utilisation": connector and connector["utilisation"],
        "cloud_sql_pool_utilisation": database and database["utilisation"],
    }


@activity
def compound_pressure(
    connector_threshold: float = 0.7,
    pool_threshold: float = 0.8,
    connect_threshold_s: float = 35.0,
    connect_samples: int = 3,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Read the three indicators and rate the risk of a failed startup.

    Arguments:
        connector_threshold: connector utilisation above which it is under pressure (0..1).
        pool_threshold: database connections in use over max_connections above which
            the pool is under pressure (0..1).
        connect_threshold_s: connection establishment time, in seconds, above which
            connects are delayed; attempts time out at twice this.
        connect_samples: connects to time (through `database_url`).

    Returns `indicators` (`vpc_connector_utilisation`, `cloud_sql_pool_utilisation`,
    `connection_establishment_time_s`: the median attempt), `thresholds`,
    `over_threshold` (the indicators past theirs) and `risk`: `low` (none),
    `elevated` (one) or `high_risk` (two or more).
    """
    indicators: dict[str, float | None] = _utilisations(configuration, secrets)
    timing = connection_time(
        connect_samples, connect_timeout_s=2 * connect_threshold_s, configuration=configuration
    )
    indicators["connection_establishment_time_s"] = timing["attempt"]["p50_s"]
    thresholds = {
        "vpc_connector_utilisation": connector_threshold,
        "cloud_sql_pool_utilisation": pool_threshold,
        "connection_establishment_time_s": connect_threshold_s,
    }
    over = [
        name for name, value in indicators.items() if value is not None and value > thresholds[name]
    ]
    risk = RISK_LEVELS[min(len(over), 2)]
    return {
        "indicators": indicators,
        "thresholds": thresholds,
        "over_threshold": over,
        "risk": risk,
        "startup_failure_prediction": risk,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value) points, per second."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0


def _assess(
    name: str,
    history: list[tuple[float, float]],
    threshold: float,
    horizon_s: float,
    trend_samples: int,
) -> tuple[str | None, float | None]:
    """(why to warn, or None; seconds to exhaustion by the trend, or None)."""
    value = history[-1][1]
    slope = _slope(history) if len(history) >= 2 else 0.0
    to_exhaustion = (1.0 - value) / slope if slope > 0 else None
    if value > threshold:
        return f"{name} {value:.0%} is above {threshold:.0%}", to_exhaustion
    if to_exhaustion is not None and len(history) >= trend_samples and to_exhaustion <= horizon_s:
        return f"{name} trend reaches 100 % in {to_exhaustion:.1f}s", to_exhaustion
    return None, to_exhaustion


@activity
def early_warning(
    window_s: float = 60.0,
    interval_s: float = 1.0,
    horizon_s: float = 75.0,
    threshold: float = 0.8,
    trend_samples: int = 4,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Watch the connector's and the database's utilisation and warn before exhaustion.

    Samples every `interval_s` seconds for at most `window_s`. It warns, and returns,
    as soon as an indicator passes `threshold` or its trend (a least-squares line over
    the last `trend_samples` samples) forecasts exhaustion (100 %) within `horizon_s`
    seconds: the test plan asks for a warning at least 30 s before Phase 3's 75 s timeout.

    Returns `warned`, `warned_at` (ISO 8601), `indicator` and `reason`, `utilisation`
    at the warning, `forecast_exhaustion_at`, and the `samples` taken.
    """
    if not (0 < interval_s <= window_s <= 3600):
        raise KitError(
            f"window_s={window_s!r}, interval_s={interval_s!r}: need 0 < interval_s <= "
            "window_s <= 3600"
        )
    started = time.monotonic()
    samples: list[dict[str, Any]] = []
    while True:
        elapsed = round(time.monotonic() - started, 3)
        values = _utilisations(configuration, secrets)
        samples.append({"at": datetime.now(UTC).isoformat(), "elapsed_s": elapsed, **values})
        for name, value in values.items():
            if value is None:
                continue
            # an indicator may show nothing in a sample (Monitoring's points are minutes late)
            history = [
                (s["elapsed_s"], s[name]) for s in samples[-trend_samples:] if s[name] is not None
            ]
            reason, to_exhaustion = _assess(name, history, threshold, horizon_s, trend_samples)
            if reason:
                now = datetime.now(UTC)
                exhaustion = (
                    None if to_exhaustion is None else now + timedelta(seconds=to_exhaustion)
                )
                return {
                    "warned": True,
                    "warned_at": now.isoformat(),
                    "indicator": name,
                    "reason": reason,
                    "utilisation": value,
                    "forecast_exhaustion_at": exhaustion and exhaustion.isoformat(),
                    "samples": samples,
                }
        if elapsed + interval_s > window_s:
            return {"warned": False, "warned_at": None, "samples": samples}
        time.sleep(interval_s)
