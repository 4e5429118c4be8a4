"""A Cloud Run instance's startup, read from Cloud Logging, in the shape of
`chaoskit.probes.service.observe_startup`, so the same expectations apply in staging.

The service logs one JSON line per phase and one for its lifespan, as the reference
service does; Cloud Run adds "Container called exit(3)" when the container exits.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.targets.gcp.api import log_poll_s, project_and_region, read_log_entries
from chaoskit.testbed.instances import phase_ended_at
from chaoskit.testbed.service.startup import PHASE_NAMES

__all__ = ["observe_cloud_run_startup", "wait_for_cloud_run_startup"]

EXIT_3 = "Container called exit(3)"


def _payload(entry: dict[str, Any]) -> dict[str, Any]:
    payload = entry.get("jsonPayload")
    return payload if isinstance(payload, dict) else {}


def _instance_id(entry: dict[str, Any]) -> str | None:
    return (entry.get("labels") or {}).get("instanceId")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@activity
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
    called exit(3), else null; `ready` once all seven phases succeeded).
    """
    project, region = project_and_region(configuration, project, region)
    start = since or _timestamp(datetime.now(UTC) - timedelta(minutes=minutes))
    query = (
        'resource.type = "cloud_run_revision" '
        f'AND resource.labels.service_name = "{service}" '
        f'AND resource.labels.location = "{region}" '
        f'AND timestamp >= "{start}"'
    )
    records = read_log_entries(
        project, query, f"reading the logs of Cloud Run service {service}", configuration, secrets
    )
    starts = [
        e for e in records if _payload(e).get("event") == "phase" and _payload(e).get("phase") == 1
    ]
    instance = _instance_id(starts[-1]) if starts else None
    mine = [e for e in records if _instance_id(e) == instance]
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
        "ready": len(phases) == len(PHASE_NAMES)
        and all(p.get("status") == "succeeded" for p in phases),
        "exit_code": 3 if exited else None,
        "startup_failed": lifespan[-1] if lifespan else None,
        "failed_phase": failed,
        "failure_at": phase_ended_at(failed),
        "phases": phases,
    }


@activity
def wait_for_cloud_run_startup(
    service: str,
    since: str,
    timeout_s: float = 180.0,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Read the logs of the instance that started after `since` until its startup has
    ended (ready, or its lifespan failed and it called exit(3)) or `timeout_s` seconds
    pass; polls every `gcp_log_poll_s` seconds of the configuration (default 5: log
    lines take seconds to arrive).

    Returns `observe_cloud_run_startup`'s report, plus `duration_s`, the seconds waited.
    """
    poll_every_s = log_poll_s(configuration)
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        report = observe_cloud_run_startup(
            service, since, project=project, region=region,
            configuration=configuration, secrets=secrets,
        )  # fmt: skip
        # the exit line can overtake the service's own last lines on their way to Logging
        exited = report["exit_code"] is not None and report["startup_failed"] is not None
        ended = report["ready"] or exited
        if ended or time.monotonic() >= deadline:
            return {**report, "duration_s": round(time.monotonic() - started, 3)}
        time.sleep(min(poll_every_s, max(0.0, deadline - time.monotonic())))
