"""Service instances as processes: start one, watch its startup, stop it.

Each instance is a real `python -m chaoskit.testbed.service` process (real uvicorn), writing its
phase lines to `<log dir>/<name>.log`. An instance started for an experiment exits with
the process that started it; the testbed's long-running instance is detached.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chaoskit.kit.processes import stop_popen
from chaoskit.testbed.postgres import find_free_port
from chaoskit.testbed.service.settings import ServiceSettings

__all__ = [
    "ServiceInstance",
    "launch_service",
    "phase_ended_at",
    "read_startup_log",
    "service_settings",
]

KIND = "service-instance"


def read_startup_log(log_path: Path) -> tuple[list[dict[str, Any]], bool | None]:
    """The phase records an instance logged, in order, and its lifespan's
    `startup_failed` (None until the lifespan has said); other lines are ignored."""
    phases, startup_failed = [], None
    try:
        lines = log_path.read_text().splitlines()
    except FileNotFoundError:
        return [], None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("event") == "phase":
            record.pop("event")
            phases.append(record)
        elif record.get("event") == "lifespan":
            startup_failed = record["startup_failed"]
    return phases, startup_failed


def phase_ended_at(phase: dict[str, Any] | None) -> str | None:
    """When a failed phase gave up (ISO 8601), for lead-time comparisons."""
    if phase is None or phase.get("started_at") is None:
        return None
    started = datetime.fromisoformat(phase["started_at"])
    return (started + timedelta(seconds=phase["elapsed_s"])).isoformat()


@dataclass
class ServiceInstance:
    name: str
    settings: ServiceSettings
    process: subprocess.Popen
    log_path: Path
    started_monotonic: float = field(default_factory=time.monotonic)
    kind: str = KIND

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def observe_startup(self, timeout_s: float) -> dict[str, Any]:
        """Wait until the instance is ready (`/health` 200) or has exited, at most `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        ready = False
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        ready = True
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        if not ready:
            # the last phase lines may still be on their way out of a dying process
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        phases, startup_failed = read_startup_log(self.log_path)
        failed = next((p for p in phases if p["status"] in ("timeout", "failed")), None)
        return {
            "instance": self.name,
            "ready": ready,
            "exit_code": self.process.poll(),
            "duration_s": round(time.monotonic() - self.started_monotonic, 3),
            "startup_failed": startup_failed,
            "failed_phase": failed,
            "failure_at": phase_ended_at(failed),
            "initialization_timeout_s": self.settings.initialization_timeout_s,
            "phases": phases,
        }

    def stop(self) -> dict[str, Any]:
        return {"exit_code": stop_popen(self.process)}


def service_settings(name: str, database_url: str, **overrides: Any) -> ServiceSettings:
    """Settings for an instance named `name`; raises SettingsError naming a bad value."""
    return ServiceSettings.parse({"database_url": database_url, "instance_name": name, **overrides})


def launch_service(
    name: str,
    settings: ServiceSettings,
    log_dir: Path,
    *,
    detach: bool = False,
) -> ServiceInstance:
    """Start a fresh instance on a free port (the settings' port is not used).

    With `detach`, the instance outlives this process (the testbed's own service);
    otherwise it exits when this process goes away, however it goes.
    """
    settings = replace(settings, port=find_free_port(settings.host))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    env = {**os.environ, **settings.to_env(), "SERVICE_EXIT_WITH_PARENT": "0" if detach else "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chaoskit.testbed.service"],
            env=env,
            stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )
    return ServiceInstance(name, settings, process, log_path)
