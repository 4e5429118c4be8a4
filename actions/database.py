"""Pressure on the database (the local stand-in for Cloud SQL): acquisition storms, CPU
and lock pressure, and a smaller `max_connections`.

CPU and lock pressure run in worker processes with the flood's release guarantees: they
stop when told, at their time limit, or when the experiment's process dies, and their
sessions (`application_name = chaos-cpu-<id>` / `chaos-lock-<id>`) are terminated
server-side by their undo if anything is left.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from chaoslib.types import Configuration

from chaoskit.actions.undo import remember_first, undo
from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.load_targets import check_load_target
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.storm import run_storm
from chaoskit.targets.workers.pressure import APPLICATION_PREFIX, start_pressure, stop_pressure
from chaoskit.testbed.lifecycle import restart_postgres
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.state import read_state

__all__ = [
    "restore_max_connections",
    "run_acquisition_storm",
    "set_max_connections",
    "start_cpu_pressure",
    "start_lock_pressure",
    "stop_cpu_pressure",
    "stop_lock_pressure",
]

MAX_DURATION_S = 5400.0  # the staging strategy's auto-termination: 90 minutes
MAX_STARTUPS = 200
MAX_CPU_WORKERS = 64
MAX_CONNECTIONS_RANGE = (5, 10000)
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise KitError(message)


def _target(
    database_url: str | None,
    configuration: Configuration | None,
    allowed_targets: Sequence[str] = (),
    key: str = "direct_database_url",
) -> str:
    """The database to load: the argument, else the configuration's `key`; loopback only."""
    dsn = RunSettings.of(configuration).given_or_configured(
        database_url,
        key,
        "database_url",
        argument="database_url",
        hint="the embedded testbed's control fills them in",
    )
    check_load_target(dsn, allowed_targets, field="database_url")
    return dsn


def _check_duration(duration_s: float) -> None:
    _require(
        0 < duration_s <= MAX_DURATION_S,
        f"duration_s={duration_s!r} is out of range: give seconds from 1 to "
        f"{MAX_DURATION_S:.0f} (90 minutes, the longest a run may hold pressure)",
    )


@activity
def run_acquisition_storm(
    startups: int,
    pool_size: int = 10,
    max_overflow: int = 15,
    pool_timeout_s: float = 90.0,
    connect_timeout_s: float = 35.0,
    deadline_s: float | None = None,
    shared_pool: bool = False,
    connect_retry_s: float = 0.5,
    database_url: str | None = None,
    allowed_targets: Sequence[str] = (),
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Start `startups` service startups at once, each acquiring its connection pool, and
    report how long each took.

    The startups are real concurrent SQLAlchemy pools in this process, running Phase 3's
    own pool-filling code, not separate service processes: on 2 cores, dozens of Python
    processes would spend the storm importing FastAPI rather than connecting.

    Arguments:
        startups: concurrent startups (at most 200).
        pool_size, max_overflow, pool_timeout_s: each pool's SQLAlchemy settings.
        connect_timeout_s: one connection attempt's deadline, in seconds; also the
            threshold an acquisition "exceeds" (the test plan: 35 s in staging).
        deadline_s: how long a startup keeps trying to fill its pool (default: twice
            `connect_timeout_s`), in seconds.
        shared_pool: the startups share one pool (pool_size + max_overflow) and each
            checks out one connection: the excess waits `pool_timeout_s` and fails with
            SQLAlchemy's QueuePool timeout (`pool_timeout`).
        connect_retry_s: seconds between connection attempts.
        database_url: the database (default: the configuration's
            `direct_database_url`); loopback only unless listed in `allowed_targets`.

    Returns `mode`, `startups`, `succeeded`, `failed` (by cause), `acquisition_s` (per
    startup, null when it never acquired), `acquisition` percentiles,
    `timeout_threshold_s`, `exceeded_timeout` and `exceeded_share`, and with a shared
    pool `pool_peak_checked_out` and `pool_peak_utilisation`. Everything acquired is
    released before it returns.
    """
    _require(
        isinstance(startups, int) and 0 < startups <= MAX_STARTUPS,
        f"startups={startups!r} is out of range: give a whole number from 1 to {MAX_STARTUPS}",
    )
    dsn = _target(database_url, configuration, allowed_targets)
    deadline_s = deadline_s if deadline_s is not None else 2 * connect_timeout_s
    _check_duration(deadline_s)
    settings = ServiceSettings.parse(
        {
            "database_url": dsn,
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout_s": pool_timeout_s,
            "connect_timeout_s": connect_timeout_s,
            "connect_retry_s": connect_retry_s,
        }
    )
    application_name = f"{APPLICATION_PREFIX}storm-{uuid.uuid4().hex[:12]}"
    return asyncio.run(
        run_storm(settings, startups, shared_pool, deadline_s, connect_timeout_s, application_name)
    )


@activity
def start_cpu_pressure(
    workers: int,
    duration_s: float,
    name: str = "cpu",
    database_url: str | None = None,
    allowed_targets: Sequence[str] = (),
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Load the database's CPU: `workers` sessions each running an expensive query in a
    loop, for `duration_s` seconds (at most 90 minutes) or until `stop_cpu_pressure`.

    On a small instance this slows everything the server does, connection
    establishment included. `database_url` defaults to the configuration's
    `direct_database_url`. Returns `{"name", "application_name", "sessions"}` once
    every session is busy.
    """
    _require(
        isinstance(workers, int) and 0 < workers <= MAX_CPU_WORKERS,
        f"workers={workers!r} is out of range: give a whole number from 1 to {MAX_CPU_WORKERS}",
    )
    _check_duration(duration_s)
    dsn = _target(database_url, configuration, allowed_targets)
    params = {"kind": "cpu", "target_dsn": dsn, "workers": workers, "duration_s": duration_s}
    return start_pressure(
        "cpu", name, "chaoskit.targets.workers.session_pressure", params, "ready", 30.0
    )


@activity
def stop_cpu_pressure(name: str = "cpu") -> dict[str, Any]:
    """Stop the CPU pressure `name`; idempotent (`{"running": false}` when none runs)."""
    return stop_pressure("cpu", name)


async def _existing_table(dsn: str, table: str) -> str | None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval("SELECT to_regclass($1)::text", table)
    finally:
        await conn.close()


@activity
def start_lock_pressure(
    table: str = "schema_migrations",
    mode: str = "ACCESS EXCLUSIVE",
    duration_s: float = 60.0,
    name: str = "lock",
    database_url: str | None = None,
    allowed_targets: Sequence[str] = (),
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Hold `LOCK TABLE <table> IN <mode> MODE` in an open transaction for `duration_s`
    seconds (at most 90 minutes) or until `stop_lock_pressure`.

    The default, an ACCESS EXCLUSIVE lock on `schema_migrations`, is what a migration
    holds: Phase 3's schema check must wait on it. `mode` is one of PostgreSQL's lock
    modes (`ACCESS SHARE` ... `ACCESS EXCLUSIVE`). Returns `{"name",
    "application_name", "table", "mode"}` once the lock is held.
    """
    normalised = " ".join(str(mode).replace("_", " ").upper().split())
    _require(
        normalised in LOCK_MODES,
        f"mode={mode!r} is not a PostgreSQL lock mode: use one of {', '.join(LOCK_MODES)}",
    )
    _require(
        isinstance(table, str) and bool(_TABLE_NAME.match(table)),
        f"table={table!r} is not a table name: give e.g. schema_migrations or public.orders",
    )
    _check_duration(duration_s)
    dsn = _target(database_url, configuration, allowed_targets)
    resolved = asyncio.run(_existing_table(dsn, table))
    _require(resolved is not None, f"table={table!r} does not exist in that database")
    params = {
        "kind": "lock",
        "target_dsn": dsn,
        "table": resolved,
        "mode": normalised,
        "duration_s": duration_s,
    }
    return start_pressure(
        "lock", name, "chaoskit.targets.workers.session_pressure", params, "ready", 30.0
    )


@activity
def stop_lock_pressure(name: str = "lock") -> dict[str, Any]:
    """Release the lock `name`; idempotent (`{"running": false}` when none is held)."""
    return stop_pressure("lock", name)


_MAX_CONNECTIONS = ("max-connections", "embedded-postgres")


@activity
def set_max_connections(max_connections: int) -> dict[str, Any]:
    """Restart the embedded PostgreSQL with `max_connections`: the local stand-in for a
    Cloud SQL tier change (db-custom-2-7680 allows 162 connections; the instance's own
    limit, not a pool's).

    Every session is cut by the restart; the long-running service restarts after it and
    holds its pool again, as at rest.
    Only the embedded PostgreSQL can be changed this way. Returns
    `{"max_connections", "previous"}`.
    """
    low, high = MAX_CONNECTIONS_RANGE
    _require(
        isinstance(max_connections, int) and low <= max_connections <= high,
        f"max_connections={max_connections!r} is out of range: give a whole number from "
        f"{low} to {high}",
    )
    previous = ((read_state() or {}).get("postgres") or {}).get("max_connections")
    _require(
        previous is not None,
        "the embedded PostgreSQL is not running: run on the embedded testbed "
        "(chaos testbed up), or change Cloud SQL's max_connections flag instead",
    )

    def save() -> Any:
        return lambda: {"max_connections": restart_postgres(previous)["max_connections"]}

    remember_first(*_MAX_CONNECTIONS, save)
    postgres = restart_postgres(max_connections)
    return {"max_connections": postgres["max_connections"], "previous": previous}


@activity
def restore_max_connections() -> dict[str, Any]:
    """Restart the embedded PostgreSQL with the `max_connections` it had before
    `set_max_connections`; idempotent. Returns `{"restored", "max_connections"}`."""
    restored = undo(*_MAX_CONNECTIONS)
    if restored is None:
        current = ((read_state() or {}).get("postgres") or {}).get("max_connections")
        return {"restored": False, "max_connections": current}
    return {"restored": True, **restored}
