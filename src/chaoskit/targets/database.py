"""Observing the database: who holds its connections, how busy it is.

Every observation goes through one `DatabaseObserver` when the run has opened one (the
kit's control does, before the method): a single connection, reused by the timeline and
the kit's probes, so that watching the database does not take a new slot every half
second. Without one, an observation opens a connection of its own and closes it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from chaoskit.kit import registry
from chaoskit.kit.dsn import connection_url
from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import classify_connect_error
from chaoskit.kit.sessions import OBSERVER_APPLICATION

__all__ = [
    "OBSERVER_APPLICATION",
    "OBSERVER_SESSIONS",
    "DatabaseObserver",
    "database_sessions",
    "observe_database",
    "open_observer",
    "server_pressure_sample",
    "session_load",
    "sessions_seen_from",
    "wait_until_sessions_left",
]

# a run's observer holds one session through the method: arithmetic of the database's
# room during a run accounts for it
OBSERVER_SESSIONS = 1
KIND = "database-observer"
_QUERY_TIMEOUT_S = 10.0

Observation = Callable[[asyncpg.Connection], Awaitable[Any]]


async def _connect(dsn: str, application: str = OBSERVER_APPLICATION) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            connection_url(dsn),
            timeout=_QUERY_TIMEOUT_S,
            server_settings={"application_name": application},
        )
    except Exception as error:  # noqa: BLE001 - one clear line for the user
        raise KitError(
            f"cannot connect to the database to observe it ({classify_connect_error(error)})"
        ) from None


class DatabaseObserver:
    """One connection, on an event loop of its own thread, that any thread may observe
    through; registered so that the run's observations find it by DSN."""

    kind = KIND

    def __init__(self, dsn: str, application: str = OBSERVER_APPLICATION) -> None:
        self.name = dsn
        self.application = application
        # one query at a time on one connection: the timeline and background probes
        # observe from threads of their own
        self._turn = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="kit-database-observer"
        )
        self._thread.start()
        try:
            self._conn = self._run(_connect(dsn, application))
        except KitError:
            self._close_loop()
            raise

    def _run(self, coroutine: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=_QUERY_TIMEOUT_S * 2)

    def observe(self, observation: Observation) -> Any:
        """Run `observation` on the connection; reconnect once if the server dropped it
        (the database was restarted, say with another `max_connections`)."""
        with self._turn:
            return self._observe(observation)

    def _observe(self, observation: Observation) -> Any:
        if self._conn.is_closed():
            self._conn = self._run(_connect(self.name, self.application))
        try:
            return self._run(observation(self._conn))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            if not self._conn.is_closed():
                raise
        self._conn = self._run(_connect(self.name, self.application))
        return self._run(observation(self._conn))

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def stop(self) -> dict[str, Any]:
        try:
            self._run(self._conn.close(timeout=5))
        except Exception:  # noqa: BLE001 - a connection that will not close is cut
            self._conn.terminate()
        self._close_loop()
        return {"closed": True}


def open_observer(dsn: str) -> DatabaseObserver:
    """Open the run's observer of `dsn` (or return the one already open)."""
    observer = registry.lookup(KIND, dsn)
    if isinstance(observer, DatabaseObserver):
        return observer
    observer = DatabaseObserver(dsn)
    registry.register(observer)
    return observer


def observe_database(dsn: str, observation: Observation) -> Any:
    """Run `observation(connection)` through the run's observer of `dsn`, else through a
    connection opened for it alone."""
    observer = registry.lookup(KIND, dsn)
    if isinstance(observer, DatabaseObserver):
        return observer.observe(observation)

    async def once() -> Any:
        conn = await _connect(dsn)
        try:
            return await observation(conn)
        finally:
            await conn.close()

    return asyncio.run(once())


# client sessions take the slots max_connections counts; an application's role does not
# see another role's backend_type, only that it is connected to a database (as are
# autovacuum's workers, rarely, and counted then)
_SESSIONS_QUERY = (
    "SELECT current_setting('max_connections')::int AS maximum, "
    "current_setting('superuser_reserved_connections')::int"
    " + current_setting('reserved_connections')::int AS reserved, "
    "coalesce(json_object_agg(app, n), '{}')::text AS apps FROM ("
    "  SELECT coalesce(application_name, '') AS app, count(*) AS n "
    "  FROM pg_stat_activity "
    "  WHERE (backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))"
    "  AND pid <> pg_backend_pid() "
    "  GROUP BY 1) AS sessions"
)


async def sessions_seen_from(conn: asyncpg.Connection) -> dict[str, Any]:
    """`max_connections`, `reserved` (slots only superusers may take), `in_use` (client
    sessions other than `conn`'s own) and `by_application`, as `conn` sees them."""
    row = await conn.fetchrow(_SESSIONS_QUERY, timeout=_QUERY_TIMEOUT_S)
    by_application = json.loads(row["apps"])
    return {
        "max_connections": row["maximum"],
        "reserved": row["reserved"],
        "in_use": sum(by_application.values()),
        "by_application": by_application,
    }


def database_sessions(dsn: str) -> dict[str, Any]:
    """`sessions_seen_from` the run's observer of `dsn` (its own session left out)."""
    return observe_database(dsn, sessions_seen_from)


def session_load(dsn: str, application_prefix: str | None = None) -> dict[str, Any]:
    """How full the database is now: `max_connections`, `in_use`, `utilisation` (0..1),
    `by_application` (sessions per application_name) and, with `application_prefix`,
    `matching` (the sessions whose application_name starts with it)."""
    sessions = database_sessions(dsn)
    load = {
        "max_connections": sessions["max_connections"],
        "in_use": sessions["in_use"],
        "utilisation": round(sessions["in_use"] / sessions["max_connections"], 4),
        "by_application": sessions["by_application"],
    }
    if application_prefix is not None:
        load["matching"] = sum(
            n for app, n in sessions["by_application"].items() if app.startswith(application_prefix)
        )
    return load


_PRESSURE_QUERY = (
    "SELECT count(*) FILTER (WHERE state = 'active') AS active, "
    "count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting, "
    "coalesce(extract(epoch FROM max(now() - query_start) "
    "  FILTER (WHERE wait_event_type = 'Lock')), 0)::float AS lock_wait, "
    "coalesce(extract(epoch FROM max(now() - query_start) "
    "  FILTER (WHERE state = 'active')), 0)::float AS query "
    "FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def server_pressure_sample(dsn: str) -> dict[str, float]:
    """Now: `active` backends, sessions `waiting` on locks, the longest `lock_wait` and
    the longest running `query`, in seconds."""

    async def query(conn: asyncpg.Connection) -> dict[str, float]:
        return dict(await conn.fetchrow(_PRESSURE_QUERY, timeout=_QUERY_TIMEOUT_S))

    return observe_database(dsn, query)


_LEAVE_TIMEOUT_S = 10.0


def wait_until_sessions_left(dsn: str, application_prefix: str) -> bool:
    """Wait (at most 10 s) until no session whose application_name starts with
    `application_prefix` remains; a closed client's backend takes a moment to exit.
    Returns whether they left."""
    deadline = time.monotonic() + _LEAVE_TIMEOUT_S
    while True:
        held = database_sessions(dsn)["by_application"]
        if not any(app.startswith(application_prefix) for app in held):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
