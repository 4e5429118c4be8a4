"""Throughput and latency: when each chunk of bytes may leave the connector.

`Throughput` is one byte-rate budget per direction shared by every connection (the
instances' share of bandwidth, or a throttle); `Latency` adds a fixed delay per chunk.
The proxy asks both for a departure time and keeps chunks of one stream in order.
"""

from __future__ import annotations

__all__ = ["Latency", "Throughput"]

_BITS_PER_MEGABIT = 1_000_000


class Throughput:
    def __init__(self) -> None:
        self._next_free = {"upstream": 0.0, "downstream": 0.0}

    def reset(self) -> None:
        """Forget the bandwidth reserved so far (the limit changed: chunks re-pace)."""
        self._next_free = {"upstream": 0.0, "downstream": 0.0}

    def departure(self, direction: str, nbytes: int, now: float, mbps: float | None) -> float:
        """The time at which `nbytes` may start to leave, reserving the bandwidth they use."""
        if mbps is None:
            return now
        bytes_per_s = mbps * _BITS_PER_MEGABIT / 8
        start = max(now, self._next_free[direction])
        self._next_free[direction] = start + nbytes / bytes_per_s
        return start


class Latency:
    @staticmethod
    def departure(now: float, latency_s: float) -> float:
        return now + latency_s
