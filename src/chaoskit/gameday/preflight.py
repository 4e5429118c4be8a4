"""Preflight: is the target healthy enough to hold a game day on?

The service answers `/health`, the database accepts a connection, the connector's
control API answers; on staging, the kit's account has every permission the staging
experiments need and every resource the profile names exists (one reason for each
missing). An unhealthy target means the game day is skipped, with reasons.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import classify_connect_error
from chaoskit.kit.health import service_health
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.gcp.access import staging_access_problems
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.system import health_path

__all__ = ["run_preflight"]

_TIMEOUT_S = 5.0


def _service(url: str, path: str) -> str | None:
    health = service_health(url, path, _TIMEOUT_S)
    if health["status_code"] is None:
        return f"service {url} is unreachable ({health['error']})"
    if not health["healthy"]:
        return f"service {url}{path} answered {health['status_code']}"
    return None


def _database(dsn: str) -> str | None:
    async def check() -> None:
        conn = await asyncpg.connect(dsn, timeout=_TIMEOUT_S)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        asyncio.run(check())
    except Exception as error:  # noqa: BLE001 - any failure: the database is not usable
        return f"database is unreachable ({classify_connect_error(error)})"
    return None


def _connector(url: str) -> str | None:
    try:
        ConnectorClient(url, _TIMEOUT_S).state()
    except KitError as error:
        return f"connector control API {url} does not answer ({error})"
    return None


def run_preflight(configuration: dict[str, Any]) -> dict[str, Any]:
    """`{"healthy", "checks": {name: "ok" | reason}, "reasons": [...]}`."""
    checks: dict[str, str] = {}
    settings = RunSettings.of(configuration)
    if not settings.service_url:
        checks["service"] = "service_url is not configured"
    else:
        path = health_path(configuration)
        checks["service"] = _service(settings.service_url, path) or "ok"
    database = settings.direct_database_url or settings.database_url
    checks["database"] = (
        (_database(database) or "ok") if database else "database_url is not configured"
    )
    if settings.connector_url:
        checks["connector"] = _connector(settings.connector_url) or "ok"
    reasons = [reason for reason in checks.values() if reason != "ok"]
    if settings.on_staging:
        problems = staging_access_problems(configuration, None)
        checks["google_cloud"] = "; ".join(problems) or "ok"
        reasons += problems
    return {"healthy": not reasons, "checks": checks, "reasons": reasons}
