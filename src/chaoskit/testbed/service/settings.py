"""The reference service's settings, all from environment variables.

Defaults are the staging figures from the incident (75 s initialisation timeout, pool
10 + overflow 15, pool timeout 90 s, connect timeout 35 s); experiments on the embedded
testbed pass compressed values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from chaoskit.kit.errors import KitError, shown

__all__ = ["ServiceSettings", "SettingsError"]


_DAY_S = 86_400.0  # no duration is longer than a day


class SettingsError(KitError):
    """A setting has a value the service cannot run with; the message names it."""


def _setting(
    env: str,
    default: Any,
    minimum: float | None = None,
    doc: str = "",
    maximum: float | None = None,
) -> Any:
    return field(default=default, metadata={"env": env, "min": minimum, "max": maximum, "doc": doc})


@dataclass(frozen=True)
class ServiceSettings:
    database_url: str = _setting("SERVICE_DATABASE_URL", "", doc="PostgreSQL DSN")
    host: str = _setting("SERVICE_HOST", "127.0.0.1", doc="address to listen on")
    port: int = _setting("SERVICE_PORT", 8000, 1, "port to listen on", 65535)
    instance_name: str = _setting(
        "SERVICE_INSTANCE_NAME", "reference", doc="names the instance's database sessions"
    )
    initialization_timeout_s: float = _setting(
        "SERVICE_INITIALIZATION_TIMEOUT_S", 75.0, 0.1, "Phase 3 deadline", _DAY_S
    )
    connect_timeout_s: float = _setting(
        "SERVICE_CONNECT_TIMEOUT_S", 35.0, 0.1, "one connection attempt's deadline", _DAY_S
    )
    pool_size: int = _setting("SERVICE_POOL_SIZE", 10, 1, "connections Phase 3 opens", 1000)
    max_overflow: int = _setting("SERVICE_MAX_OVERFLOW", 15, 0, "connections beyond the pool", 1000)
    pool_timeout_s: float = _setting(
        "SERVICE_POOL_TIMEOUT_S", 90.0, 0.1, "wait for a pooled connection", _DAY_S
    )
    connect_retry_s: float = _setting(
        "SERVICE_CONNECT_RETRY_S", 0.5, 0.01, "pause between connection attempts", _DAY_S
    )
    schema_load_bytes: int = _setting(
        "SERVICE_SCHEMA_LOAD_BYTES",
        0,
        0,
        "bytes Phase 3's schema step reads (a bulk load)",
        1_000_000_000,
    )
    phase_timeout_s: float = _setting(
        "SERVICE_PHASE_TIMEOUT_S", 30.0, 0.1, "deadline of every phase but Phase 3", _DAY_S
    )
    phase_work_s: float = _setting(
        "SERVICE_PHASE_WORK_S", 0.05, 0.0, "simulated work in phases other than 3", _DAY_S
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read every setting from `environ` (default: the process environment)."""
        environ = os.environ if environ is None else environ
        values = {
            f.name: environ[f.metadata["env"]] for f in fields(cls) if f.metadata["env"] in environ
        }
        return cls.parse(values, by_env_name=True)

    @classmethod
    def parse(cls, values: Mapping[str, Any], by_env_name: bool = False) -> ServiceSettings:
        """Build settings from `values` (by field name), converting and checking each.

        Errors name the environment variable when `by_env_name`, else the field.
        """
        converted: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            raw, kind = values[f.name], type(f.default)
            env = f.metadata["env"] if by_env_name else f.name
            said = f"{env}={shown(raw)}"
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                raise SettingsError(
                    f"{said} is not a valid {kind.__name__}: {f.metadata['doc']}"
                ) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingsError(f"{said} is not a finite number ({f.metadata['doc']})")
            minimum, maximum = f.metadata["min"], f.metadata["max"]
            if minimum is not None and value < minimum:
                raise SettingsError(f"{said} must be >= {minimum} ({f.metadata['doc']})")
            # bounded so that building the pool cannot outlast the startup's deadline
            if maximum is not None and value > maximum:
                raise SettingsError(f"{said} must be <= {maximum} ({f.metadata['doc']})")
            converted[f.name] = value
        settings = cls(**converted)
        if not settings.database_url:
            name = "SERVICE_DATABASE_URL" if by_env_name else "database_url"
            raise SettingsError(f"{name} is not set: give the PostgreSQL DSN")
        return settings

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings."""
        return {f.metadata["env"]: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) for every setting, for docs/reference.md and `--help`."""
        return [(f.metadata["env"], str(f.default), f.metadata["doc"]) for f in fields(cls)]
