"""Phase 3: build the SQLAlchemy async engine and fill its pool under the deadline.

The pool is filled the way a production instance does at startup: `pool_size`
connections checked out concurrently, each retried while the database answers with
something it may recover from (too many clients, refused, a connect timeout), then one
schema query, and optionally a bulk read of `schema_load_bytes` (a large schema
operation, whose bytes cross the connector). What the phase was last waiting for becomes
the cause of a timeout.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chaoskit.kit.dsn import connection_url
from chaoskit.kit.failures import RETRYABLE_CAUSES, classify_connect_error
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.service.startup import PhaseFailure

__all__ = [
    "BULK_QUERY",
    "SCHEMA_QUERY",
    "SCHEMA_TABLE",
    "DatabaseInitialiser",
    "async_url",
    "ensure_schema",
]

# the schema check reads the migrations table, so a lock on it holds Phase 3 up
SCHEMA_TABLE = "schema_migrations"
SCHEMA_QUERY = f"SELECT max(version) FROM {SCHEMA_TABLE}"
SCHEMA_DDL = (
    f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version bigint PRIMARY KEY); "
    f"INSERT INTO {SCHEMA_TABLE} VALUES (1) ON CONFLICT DO NOTHING"
)

BULK_QUERY = "SELECT repeat('x', :n)"


def async_url(dsn: str) -> str:
    """`dsn` for SQLAlchemy's asyncpg driver."""
    url = make_url(connection_url(dsn))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


class DatabaseInitialiser:
    """Phase 3's work; keeps the engine for the running service when it succeeds."""

    def __init__(self, settings: ServiceSettings, application_name: str | None = None) -> None:
        self.settings = settings
        self.application_name = application_name or f"service-{settings.instance_name}"
        self.engine: AsyncEngine | None = None
        self.last_cause = "connect_timeout"  # until something else is seen

    def cause_on_timeout(self) -> str:
        return self.last_cause

    async def initialise(self) -> None:
        s = self.settings
        self.engine = create_async_engine(
            async_url(s.database_url),
            pool_size=s.pool_size,
            max_overflow=s.max_overflow,
            pool_timeout=s.pool_timeout_s,
            pool_pre_ping=True,  # a restarted database: pooled connections are checked first
            connect_args={
                "timeout": s.connect_timeout_s,
                "server_settings": {"application_name": self.application_name},
            },
        )
        held: list[AsyncConnection] = []
        completed = False
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(s.pool_size):
                    group.create_task(self._checkout_into(held))
            self.last_cause = "slow_schema_query"
            await self._check_schema(held[0])
            completed = True
        except* PhaseFailure as failures:
            raise failures.exceptions[0] from None
        finally:
            if completed:  # back to the pool: the running service keeps them open
                await asyncio.gather(*(c.close() for c in held))
            else:  # failed or out of time: cut them now rather than wait on a busy one
                await asyncio.shield(asyncio.gather(*(c.invalidate() for c in held)))

    async def _check_schema(self, conn: AsyncConnection) -> None:
        try:
            await conn.execute(text(SCHEMA_QUERY))
            if self.settings.schema_load_bytes:
                # a large schema operation: its bytes cross the connector
                await conn.execute(text(BULK_QUERY), {"n": self.settings.schema_load_bytes})
        except Exception as exc:  # classified: the phase fails with its cause
            raise PhaseFailure(classify_connect_error(exc), _one_line(exc)) from exc

    async def _checkout_into(self, held: list[AsyncConnection]) -> None:
        assert self.engine is not None
        while True:
            try:
                held.append(await self.engine.connect())
                return
            except Exception as exc:  # classified, then retried or failed
                cause = classify_connect_error(exc)
                self.last_cause = cause
                if cause not in RETRYABLE_CAUSES:
                    raise PhaseFailure(cause, _one_line(exc)) from exc
            await asyncio.sleep(self.settings.connect_retry_s)

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def _one_line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


async def ensure_schema(dsn: str) -> None:
    """Create the service's schema (its migrations table) if it is not there."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(SCHEMA_DDL)
    finally:
        await conn.close()
