"""Server-side pressure from a worker process: CPU-heavy queries, or a held table lock.

Run by `chaoskit.actions.database` as
`python -m chaoskit.targets.workers.session_pressure chaos-<kind>-<id>`.
`kind` is `cpu` (`workers` sessions each running an expensive query in a loop) or `lock`
(one session holding `LOCK TABLE <table> IN <mode> MODE` in an open transaction). Both
stop when told, when `duration_s` has passed, or when the parent dies; the server also
ends them by itself shortly after `duration_s` (statement and idle-in-transaction
timeouts), should this worker be killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from chaoskit.targets.workers.lifeline import Lifeline, emit

CPU_QUERY = "SELECT count(*) FROM generate_series(1, 20000000)"
_SERVER_GRACE_S = 5.0


async def _connect(params: dict[str, Any], **server_settings: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        params["target_dsn"],
        timeout=10,
        server_settings={"application_name": params["application_name"], **server_settings},
    )


async def _burn(conn: asyncpg.Connection) -> None:
    while True:
        await conn.fetchval(CPU_QUERY)


async def _until_all_active(params: dict[str, Any], sessions: int) -> None:
    monitor = await _connect(params)
    try:
        async with asyncio.timeout(_SERVER_GRACE_S):
            while (
                await monitor.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                    "AND state = 'active' AND pid <> pg_backend_pid()",
                    params["application_name"],
                )
                < sessions
            ):
                await asyncio.sleep(0.05)
    finally:
        await monitor.close()


async def cpu_pressure(params: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    limit_ms = str(int((params["duration_s"] + _SERVER_GRACE_S) * 1000))
    conns = [await _connect(params, statement_timeout=limit_ms) for _ in range(params["workers"])]
    burners = [asyncio.create_task(_burn(conn)) for conn in conns]
    await _until_all_active(params, len(conns))  # ready means busy, not merely connected
    emit("ready", sessions=len(conns))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), params["duration_s"])
    for burner in burners:
        burner.cancel()  # asyncpg cancels the running query on the server
    await asyncio.gather(*burners, return_exceptions=True)
    await asyncio.gather(*(conn.close(timeout=5) for conn in conns), return_exceptions=True)
    return {"released": len(conns)}


async def lock_pressure(params: dict[str, Any], stop: asyncio.Event) -> dict[str, Any]:
    limit_ms = str(int((params["duration_s"] + _SERVER_GRACE_S) * 1000))
    conn = await _connect(params, idle_in_transaction_session_timeout=limit_ms)
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(f"LOCK TABLE {params['table']} IN {params['mode']} MODE")
    emit("ready", sessions=1, table=params["table"], mode=params["mode"])
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), params["duration_s"])
    await transaction.rollback()
    await conn.close(timeout=5)
    return {"released": 1}


async def main() -> None:
    lifeline, params = await Lifeline.open()
    watcher = asyncio.create_task(lifeline.watch())
    pressure = {"cpu": cpu_pressure, "lock": lock_pressure}[params["kind"]]
    try:
        released = await pressure(params, lifeline.stop)
    except Exception as error:  # noqa: BLE001 - reported to the parent, in one line
        emit("error", message=f"{type(error).__name__}: {error}")
        return
    finally:
        watcher.cancel()
    emit("released", reason="stopped" if lifeline.stop.is_set() else "duration_elapsed", **released)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
