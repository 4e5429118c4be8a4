"""Observations of the database: connect latency, connection use, server pressure."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import asyncpg
from chaoslib.types import Configuration

from chaoskit.kit.dsn import connection_url
from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.failures import classify_connect_error
from chaoskit.kit.settings import RunSettings
from chaoskit.kit.stats import percentiles
from chaoskit.targets.database import server_pressure_sample, session_load

__all__ = ["connection_time", "pool_utilisation", "server_pressure"]

_PROBE_APPLICATION = "chaos-probe"


def _dsn(database_url: str | None, configuration: Configuration | None, *keys: str) -> str:
    dsn = RunSettings.of(configuration).given_or_configured(
        database_url,
        *keys,
        argument="database_url",
        hint="the embedded testbed's control fills them in",
    )
    return connection_url(dsn)


async def _connect(dsn: str, timeout_s: float) -> asyncpg.Connection:
    return await asyncpg.connect(
        dsn, timeout=timeout_s, server_settings={"application_name": _PROBE_APPLICATION}
    )


@activity
def connection_time(
    samples: int = 10,
    connect_timeout_s: float = 35.0,
    database_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Open and close `samples` connections one after another and time each connect.

    `database_url` defaults to the configuration's `database_url` (the path the service
    takes, through the connector). Returns `samples`, `connected`, `failed` (by cause),
    `latency` percentiles of the successful connects and `attempt` percentiles of every
    attempt, failed ones included (a connect that timed out took its whole timeout), in
    seconds (`p50_s`, `p95_s`, `p99_s`, `max_s`).
    """
    if not isinstance(samples, int) or not 0 < samples <= 1000:
        raise KitError(f"samples={samples!r} is out of range: give 1 to 1000")
    dsn = _dsn(database_url, configuration, "database_url")

    async def measure() -> dict[str, Any]:
        latencies: list[float] = []
        attempts: list[float] = []
        failures: Counter[str] = Counter()
        for _ in range(samples):
            started = time.monotonic()
            try:
                conn = await _connect(dsn, connect_timeout_s)
            except Exception as error:  # noqa: BLE001 - every failure is counted by cause
                failures[classify_connect_error(error)] += 1
                attempts.append(time.monotonic() - started)
                continue
            latencies.append(time.monotonic() - started)
            attempts.append(latencies[-1])
            await conn.close()
        return {
            "samples": samples,
            "connected": len(latencies),
            "failed": dict(failures),
            "latency": percentiles(latencies),
            "attempt": percentiles(attempts),
        }

    return asyncio.run(measure())


@activity
def pool_utilisation(
    application_name_prefix: str | None = None,
    database_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Client connections in use over `max_connections`, and who holds them.

    Arguments:
        application_name_prefix: also count the sessions whose application_name starts
            with it (e.g. `chaos-flood-`, `service-`).
        database_url: defaults to the configuration's `admin_database_url` (a superuser
            sees every session), then `direct_database_url`.

    Returns `max_connections`, `in_use`, `utilisation` (0..1), `by_application`
    (sessions per application_name) and, with a prefix, `matching`.
    """
    dsn = _dsn(database_url, configuration, "admin_database_url", "direct_database_url")
    return session_load(dsn, application_name_prefix)


_SAMPLE_EVERY_S = 0.25


@activity
def server_pressure(
    window_s: float = 0.0,
    stop_on_lock_wait: bool = False,
    database_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """How busy the server is: `active_backends` (running a query), `waiting_on_locks`,
    `longest_lock_wait_s` and `longest_query_s` (seconds, 0 when none).

    With `window_s` > 0 it samples every 0.25 s for that many seconds and reports the
    peak of each, with `samples`: run it in the background while something else
    happens. With `stop_on_lock_wait` it stops as soon as a session waits on a lock.
    `database_url` defaults to the configuration's `admin_database_url`, then
    `direct_database_url`.
    """
    if not 0 <= window_s <= 3600:
        raise KitError(f"window_s={window_s!r} is out of range: give 0 to 3600 seconds")
    dsn = _dsn(database_url, configuration, "admin_database_url", "direct_database_url")

    peak = {"active": 0, "waiting": 0, "lock_wait": 0.0, "query": 0.0}
    samples = 0
    deadline = time.monotonic() + window_s
    while True:
        row = server_pressure_sample(dsn)
        samples += 1
        peak = {key: max(peak[key], row[key]) for key in peak}
        if time.monotonic() >= deadline or (stop_on_lock_wait and row["waiting"]):
            break
        time.sleep(_SAMPLE_EVERY_S)
    return {
        "active_backends": peak["active"],
        "waiting_on_locks": peak["waiting"],
        "longest_lock_wait_s": round(peak["lock_wait"], 3),
        "longest_query_s": round(peak["query"], 3),
        "samples": samples,
    }
