"""The autoscaler: scale out, one instance at a time, slowly; never in.

When demand (active plus waiting connections over capacity) passes `scale_threshold`,
a scale-out is requested; if demand is still above the threshold `scaling_delay_s`
later, one instance is added. No new request is made within `cooldown_s` of the last
scale-out, and none beyond `max_instances`. The real connector never scales in, and
neither does this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaoskit.testbed.connector.config import ConnectorConfig

__all__ = ["Autoscaler"]


class Autoscaler:
    def __init__(self, record: Callable[..., Any]) -> None:
        self._record = record
        self._requested_at: float | None = None
        self._last_scale_at: float | None = None

    @property
    def pending(self) -> bool:
        return self._requested_at is not None

    def reset(self) -> None:
        """Forget every request and scale-out: no cooldown, nothing pending."""
        self._requested_at = self._last_scale_at = None

    def status(self, now: float, config: ConnectorConfig) -> dict[str, Any]:
        """`pending` (a scale-out requested), `due_in_s` (when it comes, if demand stays
        high), `cooldown_remaining_s`, and `clock_running` (any request or scale-out
        since the start or the last reset, which a later run would feel)."""
        due = None
        if self._requested_at is not None:
            due = round(max(0.0, self._requested_at + config.scaling_delay_s - now), 3)
        cooling = 0.0
        if self._last_scale_at is not None:
            cooling = round(max(0.0, self._last_scale_at + config.cooldown_s - now), 3)
        return {
            "pending": self._requested_at is not None,
            "due_in_s": due,
            "cooldown_remaining_s": cooling,
            "clock_running": self._requested_at is not None or self._last_scale_at is not None,
        }

    def tick(self, now: float, demand: float, config: ConnectorConfig) -> int:
        """Advance to `now`; return the instance count it decides on."""
        instances = config.instances
        if not config.autoscale or instances >= config.max_instances:
            self._requested_at = None
            return instances
        above = demand > config.scale_threshold
        if self._requested_at is None:
            cooling = (
                self._last_scale_at is not None and now - self._last_scale_at < config.cooldown_s
            )
            if above and not cooling:
                self._requested_at = now
                self._record("scale_out_requested", instances=instances, demand=round(demand, 3))
            return instances
        if not above:
            self._requested_at = None
            self._record("scale_out_cancelled", instances=instances, demand=round(demand, 3))
            return instances
        if now - self._requested_at >= config.scaling_delay_s:
            waited = now - self._requested_at
            self._requested_at, self._last_scale_at = None, now
            self._record(
                "scaled_out", instances=instances + 1, previous=instances, waited_s=round(waited, 3)
            )
            return instances + 1
        return instances
