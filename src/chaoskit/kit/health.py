"""Asking a service whether it is healthy: `GET <url><path>` (the reference service's
`/health`, or the system under test's `ready.http`)."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["service_health"]


def service_health(url: str, path: str = "/health", timeout_s: float = 5.0) -> dict[str, Any]:
    """`{"healthy", "status_code", "body"}` from `<url><path>` (healthy: 2xx); an
    unreachable service is `healthy: false` with `status_code: null` and the `error`'s
    type, never an exception."""
    try:
        response = httpx.get(f"{url.rstrip('/')}{path}", timeout=timeout_s)
    except httpx.HTTPError as error:
        return {"healthy": False, "status_code": None, "error": type(error).__name__}
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    return {
        "healthy": response.is_success,
        "status_code": response.status_code,
        "body": body,
    }
