"""Preflight: is the target healthy enough to hold a game day on?

The service answers `/health`, the database accepts a connection, the connector's
control API answers; on staging, the Cloud Run service can be read with the credentials
at hand. An unhealthy target means the game day is skipped, with reasons.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import classify_connect_error
from chaoskit.targets.deployment import on_staging, staging_setting, unfold_gcp_settings
from chaoskit.targets.gcp.api import project_and_region
from chaoskit.targets.gcp.cloud_run import get_service
from chaoskit.targets.gcp.resources import service_name

__all__ = ["run_preflight"]

_TIMEOUT_S = 5.0


def _service(url: str) -> str | None:
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=_TIMEOUT_S)
    except httpx.HTTPError as error:
        return f"service {url} is unreachable ({type(error).__name__})"
    if response.status_code != 200:
        return f"service {url}/health answered {response.status_code}"
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
        httpx.get(f"{url.rstrip('/')}/state", timeout=_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as error:
        return f"connector control API {url} does not answer ({type(error).__name__})"
    return None


def _cloud_run(configuration: dict[str, Any]) -> str | None:
    """Staging: the credentials work and reach the service the cold starts roll out."""
    unfold_gcp_settings(configuration)
    try:
        service = staging_setting(configuration, "gcp_cloud_run_service", "the cold starts")
        project, region = project_and_region(configuration, None, None)
        get_service(service_name(service, project, region), configuration, None)
    except KitError as error:
        return str(error)
    return None


def run_preflight(configuration: dict[str, Any]) -> dict[str, Any]:
    """`{"healthy", "checks": {name: "ok" | reason}, "reasons": [...]}`."""
    checks: dict[str, str] = {}
    if not configuration.get("service_url"):
        checks["service"] = "service_url is not configured"
    else:
        checks["service"] = _service(configuration["service_url"]) or "ok"
    database = configuration.get("direct_database_url") or configuration.get("database_url")
    checks["database"] = (
        (_database(database) or "ok") if database else "database_url is not configured"
    )
    if configuration.get("connector_url"):
        checks["connector"] = _connector(configuration["connector_url"]) or "ok"
    if on_staging(configuration):
        checks["cloud_run"] = _cloud_run(dict(configuration)) or "ok"
    reasons = [reason for reason in checks.values() if reason != "ok"]
    return {"healthy": not reasons, "checks": checks, "reasons": reasons}
