"""Connection-rate limit: at most `rate_per_min` new connections a minute; excess waits.

A token bucket in its virtual-scheduling form (GCRA): one second's worth of connects
may come at once, after that one every 60/rate seconds.
"""

from __future__ import annotations

import asyncio

__all__ = ["RateLimit"]


class RateLimit:
    def __init__(self) -> None:
        self._theoretical_arrival = 0.0

    def delay_s(self, now: float, rate_per_min: float | None) -> float:
        """Reserve the next connect's turn at or after `now`; return how long to wait."""
        if rate_per_min is None:
            return 0.0
        interval = 60.0 / rate_per_min
        tolerance = (max(1.0, rate_per_min / 60.0) - 1.0) * interval
        start = max(now, self._theoretical_arrival - tolerance)
        self._theoretical_arrival = max(start, self._theoretical_arrival) + interval
        return start - now

    async def acquire(self, rate_per_min: float | None) -> float:
        """Wait for this connect's turn; return the seconds waited."""
        delay = self.delay_s(asyncio.get_running_loop().time(), rate_per_min)
        if delay:
            await asyncio.sleep(delay)
        return delay
