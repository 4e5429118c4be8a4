"""The connector's configuration, validated field by field.

Defaults are the staging connector (`staging-vpc-connector`, e2-micro): 2-10 instances,
250 connections and 100 Mbps per instance (200 Mbps at 2, 1000 Mbps at 10), 600
connections per minute, scale-out above 70 % after 30 s, 180 s cooldown.

Every number must be finite and inside its documented range (`RANGES`), so that no
setting can wedge the connector: the longest wait any setting can cause is bounded, and
a reset undoes it for connections already waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from chaoskit.kit.errors import KitError, shown

__all__ = ["ConfigError", "ConnectorConfig"]


class ConfigError(KitError):
    """A configuration value is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# (lowest, highest) of every numeric setting, in its unit
RANGES: dict[str, tuple[float, float]] = {
    "min_instances": (1, 100),
    "max_instances": (1, 100),
    "instances": (1, 100),
    "connections_per_instance": (1, 100_000),
    "queue_timeout_s": (0.001, 600.0),
    "rate_per_min": (1.0, 10_000_000.0),
    "mbps_per_instance": (0.01, 100_000.0),
    "throughput_cap_mbps": (0.01, 100_000.0),
    "latency_s": (0.0, 60.0),
    "scale_threshold": (0.01, 1.0),
    "scaling_delay_s": (0.0, 3600.0),
    "cooldown_s": (0.0, 3600.0),
}


@dataclass(frozen=True)
class ConnectorConfig:
    min_instances: int = 2
    max_instances: int = 10
    instances: int = 2
    connections_per_instance: int = 250
    overflow: str = "queue"  # queue: wait for a slot up to queue_timeout_s | refuse
    queue_timeout_s: float = 35.0
    rate_per_min: float | None = 600.0  # None: no limit
    mbps_per_instance: float | None = 100.0  # None: no limit
    throughput_cap_mbps: float | None = None  # a throttle below the instances' share
    latency_s: float = 0.0
    autoscale: bool = True
    scale_threshold: float = 0.7
    scaling_delay_s: float = 30.0
    cooldown_s: float = 180.0

    @property
    def capacity(self) -> int:
        return self.instances * self.connections_per_instance

    @property
    def throughput_mbps(self) -> float | None:
        """The byte-rate limit in each direction, in megabits per second (None: none)."""
        limits = [
            limit
            for limit in (
                None if self.mbps_per_instance is None else self.instances * self.mbps_per_instance,
                self.throughput_cap_mbps,
            )
            if limit is not None
        ]
        return min(limits) if limits else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> ConnectorConfig:
        """A copy with `changes` applied; raises ConfigError naming the first bad field."""
        known = {f.name: f for f in fields(self)}
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(name, f"unknown setting; known: {', '.join(sorted(known))}")
            converted[name] = _convert(name, value, known[name].type)
        config = replace(self, **converted)
        config.validate()
        return config

    def validate(self) -> None:
        def check(ok: bool, field: str, message: str) -> None:
            if not ok:
                raise ConfigError(field, message)

        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            check(
                math.isfinite(value) and low <= value <= high,
                name,
                f"{shown(value)} is out of range: give {low:g} to {high:g}",
            )
        check(self.max_instances >= self.min_instances, "max_instances", "must be >= min_instances")
        check(
            self.min_instances <= self.instances <= self.max_instances,
            "instances",
            f"must be between min_instances ({self.min_instances}) and "
            f"max_instances ({self.max_instances})",
        )
        check(self.overflow in ("queue", "refuse"), "overflow", "must be 'queue' or 'refuse'")


def _convert(name: str, value: Any, annotation: str) -> Any:
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(name, "must not be null")
    kind = annotation.split(" ")[0]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, "must be true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(name, "must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number, not {shown(value)}")
    if kind == "int":
        if not math.isfinite(value) or value != int(value):
            raise ConfigError(name, f"must be a whole number, not {shown(value)}")
        return int(value)
    return float(value)
