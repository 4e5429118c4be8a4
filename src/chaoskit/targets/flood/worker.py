"""The connection-flood worker: open real asyncpg connections, hold them, release them.

Run by `chaoskit.actions.flood` as
`python -m chaoskit.targets.flood.worker chaos-flood-<id>`.
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
from chaoskit.targets.database import sessions_seen_from
from chaoskit.targets.workers.lifeline import Lifeline, emit

_RELEASE_TIMEOUT_S = 2.0


class ConnectionFlood:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.connections: list[asyncpg.Connection] = []
        self.failures: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.retried = 0
        self.room_full = False
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

    async def burst(self) -> None:
        """Open `connections` connects, spread over `ramp_s`, `concurrency` at a time."""
        count, ramp_s = self.params["connections"], self.params["ramp_s"]
        await asyncio.gather(*(self._open_one(i * ramp_s / count) for i in range(count)))

    async def fill_room(self) -> None:
        """Retry, one at a time once the burst has settled, the connects the database
        refused as full, until `connections` are held or it refuses one more (then
        `room_full`): PostgreSQL counts backends still authenticating or exiting, so a
        burst is refused before the room is full, where other clients would keep trying."""
        while (
            self.failures["too_many_connections"]
            and len(self.connections) < self.params["connections"]
        ):
            before, held = Counter(self.failures), len(self.connections)
            await self._open_one(0)
            self.retried += 1
            if len(self.connections) == held:  # refused again, or failed otherwise
                self.room_full = (
                    self.failures["too_many_connections"] > before["too_many_connections"]
                )
                self.failures = before  # the first refusal stays the one that counts
                return
            self.failures["too_many_connections"] -= 1
        self.failures = +self.failures  # without the causes whose count came down to 0

    async def _room(self) -> dict[str, Any] | None:
        """How full the database was when the ramp ended, as one held connection sees it:
        `max_connections`, `reserved`, `in_use` (every client session, this flood's
        included) and `left` to an application (None when the flood holds none)."""
        if not self.connections:
            return None
        try:
            seen = await sessions_seen_from(self.connections[0])
        except Exception:  # noqa: BLE001 - how full it is is a remark, never the flood's end
            return None
        in_use = seen["in_use"] + 1  # the connection that asked
        left = seen["max_connections"] - seen["reserved"] - in_use
        return {
            "max_connections": seen["max_connections"],
            "reserved": seen["reserved"],
            "in_use": in_use,
            "left": max(left, 0),
        }

    async def ramp(self) -> dict[str, Any]:
        """The burst, the room filled, and the outcome."""
        count = self.params["connections"]
        started = time.monotonic()
        await self.burst()
        await self.fill_room()
        elapsed = time.monotonic() - started
        return {
            "attempted": count,
            "established": len(self.connections),
            "failed": dict(self.failures),
            "misconfigured": misconfigured(self.failures),
            "applied": flood_applied(len(self.connections), self.failures),
            "failed_share": round(sum(self.failures.values()) / count, 4),
            "retried": self.retried,
            "room_full": self.room_full,
            "room": await self._room(),
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
