"""A Cloud Run instance's startup, read from Cloud Logging (API v2, `entries.list`, as
chaostoolkit-google-cloud-platform's `get_logs_between_timestamps`), in the shape of
`probes.service.observe_startup`, so the same expectations apply in staging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from actions.gcp.api import call, gcp_client, project_and_region
from testbed.instances import phase_ended_at

__all__ = ["observe_cloud_run_startup"]

EXIT_3 = "Container called exit(3)"


def _payload(entry: dict[str, Any]) -> dict[str, Any]:
    payload = entry.get("jsonPayload")
    return payload if isinstance(payload, dict) else {}


def observe_cloud_run_startup(
    service: str,
    since: str | None = None,
    minutes: float = 10.0,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The last instance of `service` to start, since `since` (ISO 8601; default: the
    last `minutes`): its phase lines and whether it called exit(3).

    Returns `{"instance", "ready", "exit_code", "startup_failed", "failed_phase",
    "failure_at", "phases"}` as `observe_startup` does (`exit_code` 3 when the container
    called exit(3), else null).
    """
    project, region = project_and_region(configuration, project, region)
    start = since or (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()
    query = (
        'resource.type = "cloud_run_revision" '
        f'AND resource.labels.service_name = "{service}" '
        f'AND resource.labels.location = "{region}" '
        f'AND timestamp >= "{start}"'
    )
    body = {
        "resourceNames": [f"projects/{project}"],
        "filter": query,
        "orderBy": "timestamp asc",
        "pageSize": 1000,
    }
    entries = gcp_client("logging", "v2", configuration, secrets).entries()
    answer = call(entries.list(body=body), f"reading the logs of Cloud Run service {service}")
    records = answer.get("entries") or []
    starts = [
        e for e in records if _payload(e).get("event") == "phase" and _payload(e).get("phase") == 1
    ]
    instance = (starts[-1].get("labels") or {}).get("instanceId") if starts else None
    mine = [e for e in records if (e.get("labels") or {}).get("instanceId") == instance]
    phases = [
        {k: v for k, v in _payload(e).items() if k != "event"}
        for e in mine
        if _payload(e).get("event") == "phase"
    ]
    lifespan = [
        _payload(e)["startup_failed"] for e in mine if _payload(e).get("event") == "lifespan"
    ]
    exited = any(EXIT_3 in str(e.get("textPayload", "")) for e in mine)
    failed = next((p for p in phases if p.get("status") in ("timeout", "failed")), None)
    return {
        "instance": instance,
        "ready": bool(phases) and all(p.get("status") == "succeeded" for p in phases),
        "exit_code": 3 if exited else None,
        "startup_failed": lifespan[-1] if lifespan else None,
        "failed_phase": failed,
        "failure_at": phase_ended_at(failed),
        "phases": phases,
    }
