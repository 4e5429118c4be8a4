"""Summaries of measured durations."""

from __future__ import annotations

__all__ = ["percentiles"]


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of `samples` (seconds), None when there are none."""
    if not samples:
        return {"p50_s": None, "p95_s": None, "p99_s": None, "max_s": None}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50_s": at(0.50), "p95_s": at(0.95), "p99_s": at(0.99), "max_s": round(ordered[-1], 4)}
