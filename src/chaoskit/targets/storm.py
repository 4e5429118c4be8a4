"""The acquisition storm: many startups acquiring their connection pools at once.

Each simulated startup runs Phase 3's own code (`DatabaseInitialiser`): a real
SQLAlchemy async engine with its pool, filled concurrently with retries, in this
process. With `shared_pool`, the startups instead share one engine's pool (pool_size +
max_overflow) and each checks out one connection, so the excess waits `pool_timeout`
and fails with SQLAlchemy's QueuePool timeout. Whatever was acquired is held until
every startup has finished (they compete, as concurrent startups do), then released.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from chaoskit.kit.failures import classify_connect_error
from chaoskit.kit.stats import percentiles
from chaoskit.testbed.service.database import DatabaseInitialiser, async_url
from chaoskit.testbed.service.settings import ServiceSettings

__all__ = ["run_storm"]


class _Outcome:
    def __init__(self) -> None:
        self.times: list[float | None] = []
        self.failures: Counter[str] = Counter()

    def record(self, started: float, cause: str | None) -> None:
        if cause is None:
            self.times.append(round(time.monotonic() - started, 4))
        else:
            self.times.append(None)
            self.failures[cause] += 1


async def _separate_pools(
    settings: ServiceSettings, startups: int, deadline_s: float, application_name: str
) -> tuple[_Outcome, dict[str, Any]]:
    outcome = _Outcome()
    initialisers = [
        DatabaseInitialiser(settings, f"{application_name}-{i}") for i in range(startups)
    ]

    async def start(initialiser: DatabaseInitialiser) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(initialiser.initialise(), deadline_s)
        except TimeoutError:
            outcome.record(started, initialiser.cause_on_timeout())
            return
        except Exception as error:  # noqa: BLE001 - every failure is counted by cause
            outcome.record(started, getattr(error, "cause", None) or classify_connect_error(error))
            return
        outcome.record(started, None)

    try:
        await asyncio.gather(*(start(i) for i in initialisers))
        held = sum(i.engine.pool.checkedin() for i in initialisers if i.engine is not None)
    finally:
        await asyncio.gather(*(i.dispose() for i in initialisers), return_exceptions=True)
    return outcome, {"connections_held": held}


async def _shared_pool(
    settings: ServiceSettings, startups: int, application_name: str
) -> tuple[_Outcome, dict[str, Any]]:
    outcome = _Outcome()
    engine = create_async_engine(
        async_url(settings.database_url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        connect_args={
            "timeout": settings.connect_timeout_s,
            "server_settings": {"application_name": application_name},
        },
    )
    held: list[AsyncConnection] = []
    everyone_done = asyncio.Event()
    peak = 0
    remaining = startups

    async def start() -> None:
        nonlocal peak, remaining
        started = time.monotonic()
        try:
            held.append(await engine.connect())
            peak = max(peak, engine.pool.checkedout())
            outcome.record(started, None)
        except Exception as error:  # noqa: BLE001 - every failure is counted by cause
            outcome.record(started, classify_connect_error(error))
        remaining -= 1
        if not remaining:
            everyone_done.set()
        await everyone_done.wait()  # hold the connection while the others still wait

    try:
        await asyncio.gather(*(start() for _ in range(startups)))
    finally:
        await asyncio.gather(*(c.close() for c in held), return_exceptions=True)
        await engine.dispose()
    capacity = settings.pool_size + settings.max_overflow
    return outcome, {
        "pool_capacity": capacity,
        "pool_peak_checked_out": peak,
        "pool_peak_utilisation": round(peak / capacity, 4),
    }


async def run_storm(
    settings: ServiceSettings,
    startups: int,
    shared_pool: bool,
    deadline_s: float,
    timeout_threshold_s: float,
    application_name: str,
) -> dict[str, Any]:
    """Run the storm to its end and summarise it (see the module docstring)."""
    if shared_pool:
        outcome, extra = await _shared_pool(settings, startups, application_name)
    else:
        outcome, extra = await _separate_pools(settings, startups, deadline_s, application_name)
    acquired = [t for t in outcome.times if t is not None]
    exceeded = sum(1 for t in outcome.times if t is None or t > timeout_threshold_s)
    return {
        "mode": "shared_pool" if shared_pool else "separate_pools",
        "startups": startups,
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "succeeded": len(acquired),
        "failed": dict(outcome.failures),
        "acquisition_s": outcome.times,
        "acquisition": percentiles(acquired),
        "timeout_threshold_s": timeout_threshold_s,
        "exceeded_timeout": exceeded,
        "exceeded_share": round(exceeded / startups, 4),
        **extra,
    }
