"""A Cloud Run instance's startup, read from Cloud Logging, in the shape of
`chaoskit.probes.service.observe_startup`, so the same expectations apply in staging.

The service's lines are read by its startup log (the configuration's
`service.startup_log`: the reference service's JSON lines, or patterns for a service
that logs its own way), from `jsonPayload` or `textPayload`; Cloud Run adds "Container
called exit(N)." when the container exits.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import activity
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.gcp.api import (
    LogTail,
    log_poll_s,
    project_and_region,
    read_log_entries,
)
from chaoskit.testbed.instances import startup_report
from chaoskit.testbed.service.startup import PHASE_NAMES
from chaoskit.testbed.system import system_under_test

__all__ = ["observe_cloud_run_startup", "wait_for_cloud_run_startup"]

_EXIT = re.compile(r"Container called exit\((\d+)\)")


def _instance_id(entry: dict[str, Any]) -> str | None:
    return (entry.get("labels") or {}).get("instanceId")


def _newest_instance(entries: list[dict[str, Any]]) -> str | None:
    """The instance that logged last: the one the rollout started."""
    ids = [_instance_id(e) for e in entries if _instance_id(e)]
    return ids[-1] if ids else None


def _lines(entries: list[dict[str, Any]]) -> list[Any]:
    """What the service printed: `jsonPayload` objects as they are, `textPayload` text."""
    lines: list[Any] = []
    for entry in entries:
        if isinstance(entry.get("jsonPayload"), dict):
            lines.append(entry["jsonPayload"])
        elif isinstance(entry.get("textPayload"), str):
            lines.append(entry["textPayload"])
    return lines


def _exit_code(entry: dict[str, Any]) -> int | None:
    """N of Cloud Run's own line "Container called exit(N).", if this is it."""
    match = _EXIT.search(str(entry.get("textPayload", "")))
    return int(match.group(1)) if match else None


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _startup_query(service: str, region: str, revision: str | None) -> str:
    query = (
        'resource.type = "cloud_run_revision" '
        f'AND resource.labels.service_name = "{service}" '
        f'AND resource.labels.location = "{region}"'
    )
    if revision:
        query += f' AND resource.labels.revision_name = "{revision}"'
    return query


def _startup_of(records: list[dict[str, Any]], configuration: Configuration | None) -> dict:
    """The newest instance's startup in `records` (oldest first), as `observe_startup`
    reports one."""
    log = system_under_test(RunSettings.of(configuration).service).startup_log
    instance = _newest_instance(records)
    mine = [e for e in records if _instance_id(e) == instance]
    phases, startup_failed = log.read(_lines(mine))
    exit_code = next((_exit_code(e) for e in reversed(mine) if _exit_code(e) is not None), None)
    known_ready = None
    if log.format == "kit-json" and phases:
        known_ready = len(phases) == len(PHASE_NAMES) and all(
            p.get("status") == "succeeded" for p in phases
        )
    return startup_report(
        phases,
        startup_failed,
        log,
        instance=instance,
        ready=bool(known_ready),
        exit_code=exit_code,
    )


@activity
def observe_cloud_run_startup(
    service: str,
    since: str | None = None,
    minutes: float = 10.0,
    revision: str | None = None,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """The last instance of `service` (of its `revision`, if given) to start, since
    `since` (ISO 8601; default: the last `minutes`): its phase lines and whether it
    called exit(3).

    Returns `{"instance", "ready", "exit_code", "startup_failed", "failed_phase",
    "failure_at", "phases"}` as `observe_startup` does (`exit_code` 3 when the container
    called exit(3), else null; `ready` once all seven phases succeeded).
    """
    project, region = project_and_region(configuration, project, region)
    start = since or _timestamp(datetime.now(UTC) - timedelta(minutes=minutes))
    what = f"reading the logs of Cloud Run service {service}"
    query = _startup_query(service, region, revision)
    records = read_log_entries(project, query, start, what, configuration, secrets)
    return _startup_of(records, configuration)


@activity
def wait_for_cloud_run_startup(
    service: str,
    since: str,
    timeout_s: float = 180.0,
    revision: str | None = None,
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Read the logs of the instance (of `revision`, if given) that started after
    `since` until its startup has ended (ready, or its lifespan failed and it called
    exit(3)) or `timeout_s` seconds pass; polls every `gcp_log_poll_s` seconds of the
    configuration (default 5: log lines take seconds to arrive), each read starting at
    the newest line seen.

    Returns `observe_cloud_run_startup`'s report, plus `duration_s`, the seconds waited.
    """
    project, region = project_and_region(configuration, project, region)
    tail = LogTail(
        project,
        _startup_query(service, region, revision),
        since,
        f"reading the logs of Cloud Run service {service}",
        configuration,
        secrets,
    )
    poll_every_s = log_poll_s(configuration)
    started = time.monotonic()
    deadline = started + timeout_s
    ended_at = None
    while True:
        report = _startup_of(tail.read(), configuration)
        # the exit line can overtake the service's own last lines on their way to Logging
        lifespan_said = report["startup_failed"] is not None or (
            "startup_failed" in report["unreported"]
        )
        exited = report["exit_code"] is not None and lifespan_said
        if (report["ready"] or exited) and ended_at is None:
            ended_at = time.monotonic()
        # lines written before the end may still be on their way: all of a reference
        # service's seven, or as long as Logging may take
        straggling = (
            ended_at is not None
            and not _every_phase(report, configuration)
            and (time.monotonic() < ended_at + RunSettings.of(configuration).gcp.log_delay_s)
        )
        if (ended_at is not None and not straggling) or time.monotonic() >= deadline:
            return {**report, "duration_s": round(time.monotonic() - started, 3)}
        time.sleep(min(poll_every_s, max(0.0, deadline - time.monotonic())))


def _every_phase(report: dict[str, Any], configuration: Configuration | None) -> bool:
    """Whether the report has every phase the service logs (known for the kit's JSON)."""
    log = system_under_test(RunSettings.of(configuration).service).startup_log
    return log.format == "kit-json" and len(report["phases"]) == len(PHASE_NAMES)
