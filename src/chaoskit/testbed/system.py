"""The system under test: how to start one instance of the service, how to know it is up,
and how to read its startup. The kit's reference service is the default; a team's own
backend is described the same way, in the configuration's `service` object:

    "service": {
      "command": ["python", "-m", "myapp"], "cwd": "/srv/myapp",
      "env": {"DATABASE_URL": "${database_url}", "PORT": "${port}", "POOL_SIZE": "${pool_size}"},
      "ready": {"http": "/healthz"},            (or {"log": "Application started"})
      "startup_log": {"format": "regex", "phases": [...], "succeeded": "...", ...},
      "database_phase": "connect-database",     (the phase that opens its pool)
      "failure_exit_code": 1                    (how it exits when its startup fails)
    }

`${name}` in `command` and `env` takes a configuration value, or what the kit provides
for each instance: `database_url` (through the connector), `direct_database_url`,
`port`, `instance` (its name), `application_name` (`service-<instance>`: pass it as the
service's PostgreSQL application_name, and the kit tells its sessions apart),
`python` (this interpreter) and `examples` (the folder of the example services installed
with the kit: a profile of theirs works from any folder).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import RunSettings
from chaoskit.kit.shipped import EXAMPLES
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.startup_log import StartupLog, startup_log

__all__ = [
    "PROVIDED",
    "Readiness",
    "SystemUnderTest",
    "SystemUnderTestError",
    "check_startable",
    "health_path",
    "kit_paths",
    "reference_service",
    "system_under_test",
]

_FIELDS = ("command", "cwd", "env", "ready", "startup_log", "database_phase", "failure_exit_code")
# what the kit provides for every instance, besides the configuration's keys
PROVIDED = (
    "database_url",
    "direct_database_url",
    "port",
    "instance",
    "application_name",
    "python",
    "examples",
)
_KEY = re.compile(r"\$\{([^}]*)\}")
# the longest wait for an instance to be ready: an hour (a cold start on staging takes
# minutes, never hours)
_READY_TIMEOUT_MAX_S = 3600.0
# the reference service's settings the kit sets; the others keep the service's defaults
_REFERENCE_SETTINGS = {"database_url": "database_url", "port": "port", "instance_name": "instance"}
_REFERENCE_CONFIGURED = (
    "initialization_timeout_s",
    "connect_timeout_s",
    "pool_size",
    "max_overflow",
    "pool_timeout_s",
    "connect_retry_s",
    "schema_load_bytes",
)


def kit_paths() -> dict[str, str]:
    """What the kit provides wherever it is installed: `python`, its interpreter, and
    `examples`, the folder of its example services."""
    return {"python": sys.executable, "examples": str(EXAMPLES)}


class SystemUnderTestError(KitError):
    """The `service` description cannot be used; the message names the field."""


@dataclass(frozen=True)
class Readiness:
    """Up when `http` (a path on the instance's port) answers 2xx, or when a line of its
    output matches `log`; `timeout_s` bounds the wait (None: the caller's)."""

    http: str | None = "/health"
    log: re.Pattern[str] | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class SystemUnderTest:
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ready: Readiness = field(default_factory=Readiness)
    startup_log: StartupLog = field(default_factory=StartupLog)
    # what the failure chains expect of it: the reference service's Phase 3 and exit(3)
    database_phase: str = "database"
    failure_exit_code: int = 3
    reference: bool = False

    def resolve(self, values: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """The argv and environment with every `${name}` taken from `values`;
        SystemUnderTestError names a `${name}` that `values` lacks."""

        def fill(text: str, where: str) -> str:
            def value(match: re.Match[str]) -> str:
                name = match.group(1)
                if values.get(name) is None:
                    raise SystemUnderTestError(
                        f"{where}: ${{{name}}} is not known: use a configuration key or one "
                        f"of {', '.join(PROVIDED)}"
                    )
                return str(values[name])

            return _KEY.sub(value, text)

        argv = [fill(part, f"service.command[{i}]") for i, part in enumerate(self.command)]
        env = {name: fill(text, f"service.env.{name}") for name, text in self.env.items()}
        return argv, env


def check_startable(system: SystemUnderTest, values: Mapping[str, Any] | None = None) -> None:
    """Refuse, before anything runs, a `cwd` that is not a folder, a `${name}` in the
    command or the environment that `values` (the configuration) and the kit do not
    provide, or a program that is not found."""
    cwd = Path(system.cwd or ".")
    if not cwd.is_dir():
        raise SystemUnderTestError(
            f"service.cwd: {system.cwd!r} is not a folder (relative to {Path.cwd()})"
        )
    # what the kit provides for each instance stands in for itself here
    argv, _ = system.resolve({**(values or {}), **{name: name for name in PROVIDED}, **kit_paths()})
    program = argv[0]
    found = (cwd / program).is_file() if "/" in program else shutil.which(program)
    if not found or ("/" in program and not os.access(cwd / program, os.X_OK)):
        raise SystemUnderTestError(
            f"service.command[0]: {program!r} is not found (or not executable) from "
            f"{cwd.resolve()}: give the program's path, or put it on PATH"
        )


def health_path(configuration: Mapping[str, Any] | None) -> str:
    """Where the configured system under test answers whether it is up (`ready.http`;
    `/health` for one that tells it by a log line)."""
    return system_under_test(RunSettings.of(configuration).service).ready.http or "/health"


def reference_service() -> SystemUnderTest:
    """The kit's reference service: `python -m chaoskit.testbed.service`, its settings
    from the configuration, up when `/health` answers, its phases as JSON lines."""
    env = {}
    for setting in fields(ServiceSettings):
        env_name = setting.metadata["env"]
        if setting.name in _REFERENCE_SETTINGS:
            env[env_name] = "${" + _REFERENCE_SETTINGS[setting.name] + "}"
        elif setting.name in _REFERENCE_CONFIGURED:
            env[env_name] = "${" + setting.name + "}"
    return SystemUnderTest(
        command=("${python}", "-m", "chaoskit.testbed.service"),
        env=env,
        reference=True,
    )


def _readiness(description: Any) -> Readiness:
    if description is None:
        return Readiness()
    if not isinstance(description, Mapping) or not ({"http", "log"} & set(description)):
        raise SystemUnderTestError(
            'service.ready: give {"http": "/health"} (a path answering 2xx on ${port}) '
            'or {"log": "a line it prints when up"}'
        )
    unknown = sorted(set(description) - {"http", "log", "timeout_s"})
    if unknown:
        raise SystemUnderTestError(f"service.ready: unknown {', '.join(unknown)}")
    http, log, timeout_s = (description.get(k) for k in ("http", "log", "timeout_s"))
    if http is not None and not (isinstance(http, str) and http.startswith("/")):
        raise SystemUnderTestError(f"service.ready.http: {http!r}: give a path, e.g. /health")
    pattern = None
    if log is not None:
        try:
            pattern = re.compile(log)
        except (re.error, TypeError) as error:
            raise SystemUnderTestError(
                f"service.ready.log: not a regular expression ({error})"
            ) from None
    if timeout_s is not None and (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s <= _READY_TIMEOUT_MAX_S
    ):
        raise SystemUnderTestError(
            f"service.ready.timeout_s: {timeout_s!r}: give seconds, more than 0 and at most "
            f"{_READY_TIMEOUT_MAX_S:g}"
        )
    return Readiness(http, pattern, timeout_s)


def system_under_test(description: Mapping[str, Any] | None) -> SystemUnderTest:
    """The system an experiment starts instances of: the reference service when
    `description` is empty; SystemUnderTestError names a bad field."""
    if not description:
        return reference_service()
    if not isinstance(description, Mapping):
        raise SystemUnderTestError("service: give an object with `command` (and env, ready, ...)")
    unknown = sorted(set(description) - set(_FIELDS))
    if unknown:
        raise SystemUnderTestError(
            f"service: unknown {', '.join(unknown)}; give {', '.join(_FIELDS)}"
        )
    command = description.get("command")
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        raise SystemUnderTestError(
            'service.command: give the argv that starts one instance, e.g. ["python", "-m", '
            '"myapp"]'
        )
    env = description.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in env.items()
    ):
        raise SystemUnderTestError("service.env: give an object of variable names to text")
    cwd = description.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise SystemUnderTestError("service.cwd: give a folder")
    database_phase = description.get("database_phase", "database")
    if not isinstance(database_phase, str) or not database_phase:
        raise SystemUnderTestError(
            "service.database_phase: give the name of the phase that opens its pool"
        )
    exit_code = description.get("failure_exit_code", 3)
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 1 <= exit_code <= 255:
        raise SystemUnderTestError(f"service.failure_exit_code: {exit_code!r}: give 1 to 255")
    return SystemUnderTest(
        command=tuple(command),
        env={k: str(v) for k, v in env.items()},
        cwd=cwd,
        ready=_readiness(description.get("ready")),
        startup_log=startup_log(
            description.get("startup_log", {"format": "none"}), "service.startup_log"
        ),
        database_phase=database_phase,
        failure_exit_code=exit_code,
    )
