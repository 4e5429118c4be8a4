"""Connection-rate limit: at most `rate_per_min` new connections a minute; excess waits.

A token bucket in its virtual-scheduling form (GCRA): one second's worth of connects
may come at once, after that one every 60/rate seconds. A connect waiting for its turn
is woken when the rate changes (a reconfiguration, a reset) and waits anew at the rate
in force then, so that no setting outlives itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["RateLimit"]


class RateLimit:
    def __init__(self) -> None:
        self._theoretical_arrival = 0.0
        self._changed: asyncio.Event | None = None

    def delay_s(self, now: float, rate_per_min: float | None) -> float:
        """Reserve the next connect's turn at or after `now`; return how long to wait."""
        if rate_per_min is None:
            return 0.0
        interval = 60.0 / rate_per_min
        tolerance = (max(1.0, rate_per_min / 60.0) - 1.0) * interval
        start = max(now, self._theoretical_arrival - tolerance)
        self._theoretical_arrival = max(start, self._theoretical_arrival) + interval
        return start - now

    def changed(self) -> None:
        """The rate changed: forget every reservation and wake every waiting connect."""
        self._theoretical_arrival = 0.0
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def acquire(self, rate_per_min: Callable[[], float | None]) -> float:
        """Wait for this connect's turn at the rate in force; return the seconds waited."""
        loop = asyncio.get_running_loop()
        started, waited = loop.time(), False
        while True:
            delay = self.delay_s(loop.time(), rate_per_min())
            if delay <= 0:
                return loop.time() - started if waited else 0.0
            if self._changed is None:
                self._changed = asyncio.Event()
            changed, waited = self._changed, True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)
            if not changed.is_set():
                return loop.time() - started
