"""Capacity: `instances x connections_per_instance` concurrent connections.

A connection above capacity either waits for a slot, first come first served, up to
`queue_timeout_s` (then it is closed), or is refused at once (`overflow = refuse`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Capacity", "NoSlot"]


class NoSlot(Exception):
    """No slot was given: `reason` is `refused` or `queue_timeout`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Capacity:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self, overflow: str, queue_timeout_s: float) -> None:
        """Take a slot, waiting or not as `overflow` says; raises NoSlot otherwise."""
        if self.active < self.slots and not self.waiting:
            self.active += 1
            return
        if overflow == "refuse":
            raise NoSlot("refused")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # asyncio.wait leaves the waiter alone on timeout: no lost hand-over
            done, _ = await asyncio.wait({waiter}, timeout=queue_timeout_s)
        except asyncio.CancelledError:
            if waiter.done():
                self.release()  # handed a slot just as the client went away
            self._forget(waiter)
            raise
        if not done:
            self._forget(waiter)
            raise NoSlot("queue_timeout")

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def release(self) -> None:
        self.active -= 1
        self._hand_over()

    def resize(self, slots: int) -> None:
        """New capacity (scale-out, reconfiguration): waiters get the new slots."""
        self.slots = slots
        self._hand_over()

    def _hand_over(self) -> None:
        while self.active < self.slots and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)
