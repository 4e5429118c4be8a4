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
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chaoskit.kit.errors import KitError
from chaoskit.kit.load_targets import check_load_target, postgres_urls
from chaoskit.kit.processes import stop_popen
from chaoskit.kit.redaction import redact_secrets
from chaoskit.testbed.postgres import find_free_port
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.startup_log import StartupLog
from chaoskit.testbed.system import SystemUnderTest, kit_paths, reference_service

__all__ = [
    "KIND",
    "ReadyCheck",
    "ServiceInstance",
    "launch_instance",
    "launch_service",
    "phase_ended_at",
    "service_settings",
    "startup_report",
    "unreported",
]

logger = logging.getLogger("chaostoolkit")
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
    failure_at = phase_ended_at(failed)
    return {
        **known,
        "startup_failed": startup_failed,
        "failed_phase": failed,
        "failure_at": failure_at,
        "phases": phases,
        "phases_after_failure": [p.get("status") for p in phases[phases.index(failed) + 1 :]]
        if failed is not None
        else [],
        "unreported": unreported(log, failed, startup_failed, failure_at),
    }


def unreported(
    log: StartupLog,
    failed: dict[str, Any] | None,
    startup_failed: bool | None,
    failure_at: str | None,
) -> list[str]:
    """What this service's log did not say, as paths of the startup report: an
    expectation on one of them is inconclusive, never unmet. Beyond what the log can
    never say (no phases, no blocked phases, no lifespan), a failed phase whose log
    named no cause the kit knows, no duration or no moment."""
    if not log.reports_phases:
        return ["phases", "failed_phase", "failure_at", "phases_after_failure", "startup_failed"]
    missing = [] if log.reports_blocked_phases else ["phases_after_failure"]
    if startup_failed is None and not log.reports_startup_failed:
        missing.append("startup_failed")
    if failed is not None:
        missing += [
            f"failed_phase.{key}" for key in ("cause", "elapsed_s") if failed.get(key) is None
        ]
        if failure_at is None:
            missing.append("failure_at")
    return missing


@dataclass
class ReadyCheck:
    """How an instance's readiness was checked, and what the last check found."""

    description: str
    checks: int = 0
    answer: str | None = None

    def says(self) -> str:
        """e.g. `GET /healthz answered 404 (the last of 120 checks)`."""
        if self.checks == 0:
            return f"{self.description} was never checked"
        return f"{self.description} {self.answer} (the last of {self.checks} checks)"


@dataclass
class ServiceInstance:
    name: str
    system: SystemUnderTest
    process: subprocess.Popen
    log_path: Path
    port: int
    initialization_timeout_s: float | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    kind: str = KIND

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def _ready_check(self) -> ReadyCheck:
        ready = self.system.ready
        if ready.log is not None:
            return ReadyCheck(f"a line matching ready.log {ready.log.pattern!r}")
        return ReadyCheck(f"GET {ready.http} on port {self.port}")

    def _is_ready(self, client: httpx.Client, check: ReadyCheck) -> bool:
        ready = self.system.ready
        check.checks += 1
        if ready.log is not None:
            found = any(ready.log.search(line) for line in self._lines())
            check.answer = "was printed" if found else "was not printed"
            return found
        try:
            response = client.get(f"{self.url}{ready.http}")
        except httpx.TransportError as error:
            check.answer = f"was not answered ({type(error).__name__})"
            return False
        check.answer = f"answered {response.status_code}"
        return response.is_success

    def observe_startup(self, timeout_s: float) -> dict[str, Any]:
        """Wait until the instance is ready or has exited, at most `timeout_s` (or the
        service's own `ready.timeout_s`); report its startup, and when it is not ready,
        why (`reason`): the phase that failed, or what its readiness check found."""
        timeout_s = self.system.ready.timeout_s or timeout_s
        deadline = time.monotonic() + timeout_s
        ready, check = False, self._ready_check()
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._is_ready(client, check):
                    ready = True
                    break
                time.sleep(0.05)
        if not ready:
            # the last lines may still be on their way out of a dying process
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        lines = self._lines()
        log = self.system.startup_log
        phases, startup_failed = log.read(lines, self.started_at)
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
            report["ready_check"] = check.says()
            unobserved = _unobserved(log.reports_phases, report, timeout_s, check)
            if unobserved:
                report.update(observed=False, reason=unobserved)
            else:
                report["reason"] = _not_ready(report)
        return report

    def stop(self) -> dict[str, Any]:
        """SIGTERM; SIGKILL when it ignores it for the grace period."""
        return {"exit_code": stop_popen(self.process, grace_s=_STOP_GRACE_S)}


def _not_ready(report: dict[str, Any]) -> str:
    """Why an observed startup did not become ready, in one line."""
    failed = report["failed_phase"]
    exit_code = report["exit_code"]
    ended = f"exit code {exit_code}" if exit_code is not None else "still running"
    if failed is None:
        return f"it exited before it was ready, with no failed phase in its log ({ended})"
    elapsed = f" after {failed['elapsed_s']:g}s" if failed.get("elapsed_s") is not None else ""
    cause = failed.get("cause") or failed.get("cause_text") or "no cause given"
    return f"phase {failed.get('name')} {failed.get('status')}{elapsed} ({cause}); {ended}"


def _unobserved(
    reports_phases: bool, report: dict[str, Any], timeout_s: float, check: ReadyCheck
) -> str | None:
    """Why a startup that did not become ready says nothing about the system, if so: it
    logged no phase its startup log recognises, or it is still running with no failed
    phase when the wait ends."""
    exit_code = report["exit_code"]
    if reports_phases and not report["phases"]:
        ended = f"exited with code {exit_code}" if exit_code is not None else "is still running"
        return (
            f"the instance {ended} without logging a phase its startup log recognises: "
            "check service.command and service.startup_log against its last lines"
        )
    if exit_code is None and report["failed_phase"] is None:
        return (
            f"the instance did not become ready within {timeout_s:g}s and is still running: "
            f"{check.says()}"
        )
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
    `${name}` in its command and environment taken from `values`; its output, both
    streams, goes to `<log_dir>/<name>.log`. A database URL in its environment that the
    guardrails refuse (`values["guardrails"]["allowed_targets"]`, else loopback only)
    stops it before it starts; a service of the user's own is said before it starts.

    With `detach`, the instance outlives this process (the testbed's own service);
    otherwise the reference service exits when this process goes away, however it goes.
    """
    port = port or find_free_port()
    provided = {
        "port": port,
        "instance": name,
        "application_name": f"service-{name}",
        **kit_paths(),
    }
    argv, env = system.resolve({**values, **provided})
    allowed = (values.get("guardrails") or {}).get("allowed_targets") or ()
    for variable, text in env.items():
        for url in postgres_urls(text):
            check_load_target(url, allowed, field=f"service.env.{variable}")
    if system.reference:
        env["SERVICE_EXIT_WITH_PARENT"] = "0" if detach else "1"
    else:
        folder = Path(system.cwd or ".").resolve()
        logger.info(
            f"Starting {name!r} of your service: {redact_secrets(shlex.join(argv))} (in {folder})"
        )
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
    name: str,
    settings: ServiceSettings,
    log_dir: Path,
    *,
    detach: bool = False,
    allowed_targets: tuple[str, ...] = (),
) -> ServiceInstance:
    """Start an instance of the reference service with `settings`; its database URL
    must be loopback, or a host of `allowed_targets`."""
    values = {**dataclasses.asdict(settings), "guardrails": {"allowed_targets": allowed_targets}}
    return launch_instance(name, reference_service(), values, log_dir, detach=detach)
