"""Instances of the system under test, as processes: start one, watch its startup, stop it.

An instance is a real process of the service the configuration describes (by default
the reference service, real uvicorn) on a free port of loopback, writing its output to
`<log dir>/<name>.log`. Its startup is read from that output by the service's startup
log (`chaoskit.testbed.startup_log`). An instance started for an experiment is stopped
with the process that started it; the testbed's long-running instance is detached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chaoskit.kit.errors import KitError
from chaoskit.kit.processes import stop_popen
from chaoskit.testbed.postgres import find_free_port
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.startup_log import StartupLog
from chaoskit.testbed.system import SystemUnderTest, reference_service

__all__ = [
    "KIND",
    "ServiceInstance",
    "launch_instance",
    "launch_service",
    "phase_ended_at",
    "service_settings",
    "startup_report",
]

KIND = "service-instance"
_LAST_LINES = 10
_STOP_GRACE_S = 10.0


def phase_ended_at(phase: dict[str, Any] | None) -> str | None:
    """When a failed phase gave up (ISO 8601), for lead-time comparisons."""
    if phase is None or phase.get("started_at") is None or phase.get("elapsed_s") is None:
        return None
    started = datetime.fromisoformat(phase["started_at"])
    return (started + timedelta(seconds=phase["elapsed_s"])).isoformat()


def startup_report(
    phases: list[dict[str, Any]],
    startup_failed: bool | None,
    log: StartupLog,
    **known: Any,
) -> dict[str, Any]:
    """The startup, in the one shape every target and every startup log gives: `ready`,
    `exit_code`, `duration_s`, `phases`, `failed_phase`, `failure_at`,
    `phases_after_failure` (their statuses), `startup_failed` and `unreported` (what
    this service's log does not say), with `known`'s keys."""
    failed = next((p for p in phases if p.get("status") in ("timeout", "failed")), None)
    unreported = [] if log.reports_phases else ["phases", "failed_phase", "failure_at"]
    if not log.reports_blocked_phases:
        unreported.append("phases_after_failure")
    if startup_failed is None and not (log.reports_phases and phases):
        unreported.append("startup_failed")
    after = phases[phases.index(failed) + 1 :] if failed is not None else []
    return {
        **known,
        "startup_failed": startup_failed,
        "failed_phase": failed,
        "failure_at": phase_ended_at(failed),
        "phases": phases,
        "phases_after_failure": [p.get("status") for p in after],
        "unreported": unreported,
    }


@dataclass
class ServiceInstance:
    name: str
    system: SystemUnderTest
    process: subprocess.Popen
    log_path: Path
    port: int
    initialization_timeout_s: float | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    kind: str = KIND

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def _is_ready(self, client: httpx.Client) -> bool:
        ready = self.system.ready
        if ready.log is not None:
            return any(ready.log.search(line) for line in self._lines())
        try:
            return client.get(f"{self.url}{ready.http}").is_success
        except httpx.TransportError:
            return False

    def observe_startup(self, timeout_s: float) -> dict[str, Any]:
        """Wait until the instance is ready or has exited, at most `timeout_s` (or the
        service's own `ready.timeout_s`); report its startup."""
        timeout_s = self.system.ready.timeout_s or timeout_s
        deadline = time.monotonic() + timeout_s
        ready = False
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._is_ready(client):
                    ready = True
                    break
                time.sleep(0.05)
        if not ready:
            # the last lines may still be on their way out of a dying process
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        lines = self._lines()
        log = self.system.startup_log
        phases, startup_failed = log.read(lines)
        exit_code = self.process.poll()
        report = startup_report(
            phases,
            startup_failed,
            log,
            instance=self.name,
            ready=ready,
            exit_code=exit_code,
            duration_s=round(time.monotonic() - self.started_monotonic, 3),
            initialization_timeout_s=self.initialization_timeout_s,
        )
        if not ready:
            report["last_lines"] = lines[-_LAST_LINES:]
            unobserved = _unobserved(log.reports_phases, phases, exit_code, timeout_s)
            if unobserved:
                report.update(observed=False, reason=unobserved)
        return report

    def stop(self) -> dict[str, Any]:
        """SIGTERM; SIGKILL when it ignores it for the grace period."""
        return {"exit_code": stop_popen(self.process, grace_s=_STOP_GRACE_S)}


def _unobserved(
    reports_phases: bool, phases: list[dict[str, Any]], exit_code: int | None, timeout_s: float
) -> str | None:
    """Why a startup that did not become ready says nothing about the system, if so."""
    if reports_phases and not phases:
        ended = f"exited with code {exit_code}" if exit_code is not None else "is still running"
        return (
            f"the instance {ended} without logging a phase its startup log recognises: "
            "check service.command and service.startup_log against its last lines"
        )
    if exit_code is None and not reports_phases:
        return f"the instance did not become ready within {timeout_s:g}s and is still running"
    return None


def launch_instance(
    name: str,
    system: SystemUnderTest,
    values: Mapping[str, Any],
    log_dir: Path,
    *,
    detach: bool = False,
    port: int | None = None,
) -> ServiceInstance:
    """Start an instance of `system` on `port` of loopback (default: a free one), with
    `${name}` in its command and environment taken from `values`.

    With `detach`, the instance outlives this process (the testbed's own service);
    otherwise the reference service exits when this process goes away, however it goes.
    """
    port = port or find_free_port()
    provided = {"port": port, "instance": name, "application_name": f"service-{name}",
                "python": sys.executable}  # fmt: skip
    argv, env = system.resolve({**values, **provided})
    if system.reference:
        env["SERVICE_EXIT_WITH_PARENT"] = "0" if detach else "1"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log:
        try:
            process = subprocess.Popen(
                argv,
                cwd=system.cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as error:
            raise KitError(
                f"service.command: {argv[0]!r} cannot be started ({error.strerror}): give "
                "the program's path, or run from the folder service.cwd names"
            ) from None
    timeout = values.get("initialization_timeout_s")
    return ServiceInstance(name, system, process, log_path, port, timeout)


def service_settings(name: str, database_url: str, **overrides: Any) -> ServiceSettings:
    """Reference service settings for an instance named `name`; SettingsError names a bad
    value."""
    return ServiceSettings.parse({"database_url": database_url, "instance_name": name, **overrides})


def launch_service(
    name: str, settings: ServiceSettings, log_dir: Path, *, detach: bool = False
) -> ServiceInstance:
    """Start an instance of the reference service with `settings`."""
    values = dataclasses.asdict(settings)
    return launch_instance(name, reference_service(), values, log_dir, detach=detach)
