"""The connection-flood worker: open real asyncpg connections, hold them, release them.

Run by `chaoskit.actions.flood` as
`python -m chaoskit.targets.workers.connection_flood chaos-flood-<id>`.
It releases everything when told to, when `hold_s` has passed, or when its parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import asyncpg

from chaoskit.kit.failures import classify_connect_error, flood_applied, misconfigured
from chaoskit.kit.stats import percentiles
from chaoskit.targets.workers.lifeline import Lifeline, emit

_RELEASE_TIMEOUT_S = 2.0


class ConnectionFlood:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.connections: list[asyncpg.Connection] = []
        self.failures: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._in_flight = asyncio.Semaphore(params["concurrency"])

    async def _open_one(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        async with self._in_flight:
            started = time.monotonic()
            try:
                conn = await asyncpg.connect(
                    self.params["target_dsn"],
                    timeout=self.params["connect_timeout_s"],
                    server_settings={"application_name": self.params["application_name"]},
                )
            except Exception as exc:  # noqa: BLE001 - every failure is counted by cause
                self.failures[classify_connect_error(exc)] += 1
                return
            self.latencies.append(time.monotonic() - started)
            self.connections.append(conn)

    async def ramp(self) -> dict[str, Any]:
        count, ramp_s = self.params["connections"], self.params["ramp_s"]
        started = time.monotonic()
        await asyncio.gather(*(self._open_one(i * ramp_s / count) for i in range(count)))
        elapsed = time.monotonic() - started
        return {
            "attempted": count,
            "established": len(self.connections),
            "failed": dict(self.failures),
            "misconfigured": misconfigured(self.failures),
            "applied": flood_applied(len(self.connections), self.failures),
            "failed_share": round(sum(self.failures.values()) / count, 4),
            "connect_latency": percentiles(self.latencies),
            "ramp_elapsed_s": round(elapsed, 3),
            "connections_per_s": round(len(self.connections) / elapsed, 1) if elapsed else None,
        }

    async def release(self) -> dict[str, Any]:
        started = time.monotonic()
        held = len(self.connections)

        async def close(conn: asyncpg.Connection) -> None:
            try:
                await conn.close(timeout=_RELEASE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - a connection that will not close is cut
                conn.terminate()

        await asyncio.gather(*(close(c) for c in self.connections))
        self.connections.clear()
        return {"released": held, "release_s": round(time.monotonic() - started, 3)}


async def main() -> None:
    lifeline, params = await Lifeline.open()
    watcher = asyncio.create_task(lifeline.watch())
    flood = ConnectionFlood(params)
    ramp = asyncio.create_task(flood.ramp())
    stop_wait = asyncio.create_task(lifeline.stop.wait())
    await asyncio.wait({ramp, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if ramp.done():
        emit("ramped", **ramp.result())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lifeline.stop.wait(), params["hold_s"])
    else:  # told to stop mid-ramp: cancel the connects still pending
        ramp.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ramp
    reason = "stopped" if lifeline.stop.is_set() else "hold_elapsed"
    emit("released", reason=reason, **await flood.release())
    watcher.cancel()
    stop_wait.cancel()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
