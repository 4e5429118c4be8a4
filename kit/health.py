"""Asking a service whether it is healthy: `GET <url>/health`."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["service_health"]


def service_health(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """`{"healthy", "status_code", "body"}` from `<url>/health`; an unreachable service is
    `healthy: false` with `status_code: null` and the `error`'s type, never an exception."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError as error:
        return {"healthy": False, "status_code": None, "error": type(error).__name__}
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    return {
        "healthy": response.status_code == 200,
        "status_code": response.status_code,
        "body": body,
    }
