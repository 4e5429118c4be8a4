"""The testbed's baseline, and what a run (or a killed one) may have left off it.

Every run starts from the baseline, so that two runs with the same parameters give the
same verdict: the connector at its starting configuration with its autoscaler's clock at
rest, no session of the kit's left in the database, and PostgreSQL at the
`max_connections` it was brought up with. `find_drift` says what differs; `reset_drift`
puts it back, and says what it reset.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from chaoskit.kit.errors import KitError
from chaoskit.kit.sessions import KIT_PREFIX, OBSERVER_APPLICATION
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.lifecycle import restart_postgres

__all__ = ["find_drift", "reset_drift"]


async def _kit_sessions(admin_dsn: str, terminate: bool) -> int:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        action = "pg_terminate_backend(pid)" if terminate else "pid"
        return await conn.fetchval(
            f"SELECT count({action}) FROM pg_stat_activity "
            "WHERE application_name LIKE $1 AND application_name <> $2 "
            "AND pid <> pg_backend_pid()",
            KIT_PREFIX + "%",
            OBSERVER_APPLICATION,
        )
    finally:
        await conn.close()


def find_drift(state: dict[str, Any]) -> list[str]:
    """What differs from the baseline, in words; empty when nothing does."""
    drift = []
    changed = ConnectorClient(state["connector"]["url"]).state()["drift"]
    if changed:
        drift.append(f"connector: {', '.join(changed)} changed")
    postgres = state["postgres"]
    baseline = postgres.get("baseline_max_connections")
    if baseline is not None and postgres.get("max_connections") != baseline:
        drift.append(f"postgres: max_connections {postgres['max_connections']}, not {baseline}")
    sessions = asyncio.run(_kit_sessions(postgres["admin_dsn"], terminate=False))
    if sessions:
        drift.append(f"postgres: {sessions} sessions of an earlier run still open")
    return drift


def reset_drift(state: dict[str, Any]) -> list[str]:
    """Put the testbed back at its baseline; return what was reset (empty: nothing)."""
    reset = []
    connector = ConnectorClient(state["connector"]["url"])
    changed = connector.state()["drift"]
    if changed:
        connector.reset()
        reset.append(f"connector ({', '.join(changed)})")
    postgres = state["postgres"]
    baseline = postgres.get("baseline_max_connections")
    if baseline is not None and postgres.get("max_connections") != baseline:
        try:
            restart_postgres(baseline)
        except KitError as error:
            raise KitError(f"the testbed drifted and cannot be reset: {error}") from None
        reset.append(f"postgres max_connections back to {baseline}")
    terminated = asyncio.run(_kit_sessions(postgres["admin_dsn"], terminate=True))
    if terminated:
        reset.append(f"{terminated} leftover sessions of an earlier run terminated")
    return reset
