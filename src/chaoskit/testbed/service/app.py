"""The reference service's FastAPI app: the 7-phase startup in the lifespan, and health.

A failed phase marks `app.state.startup_failed` and re-raises from the lifespan, so that
uvicorn itself reports the startup failure and exits with code 3, as the production
container does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from sqlalchemy import text

from chaoskit.testbed.service.database import DatabaseInitialiser
from chaoskit.testbed.service.settings import ServiceSettings
from chaoskit.testbed.service.startup import Phase, StartupManager, log_lifespan

__all__ = ["create_app"]

_HEALTH_QUERY_TIMEOUT_S = 2.0


def _startup_phases(settings: ServiceSettings, database: DatabaseInitialiser) -> list[Phase]:
    async def simulated_work() -> None:
        # the other phases stand in for production work (cache warm-up, websocket
        # registration, ...) that takes a little time and never fails on its own
        await asyncio.sleep(settings.phase_work_s)

    def other(name: str) -> Phase:
        return Phase(name, simulated_work, settings.phase_timeout_s)

    return [
        other("init"),
        other("dependencies"),
        Phase(
            "database",
            database.initialise,
            settings.initialization_timeout_s,
            database.cause_on_timeout,
        ),
        other("cache"),
        other("services"),
        other("websocket"),
        other("finalize"),
    ]


def create_app(settings: ServiceSettings) -> FastAPI:
    database = DatabaseInitialiser(settings)
    manager = StartupManager(_startup_phases(settings, database))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.startup_failed = False
        try:
            await manager.run()
        except Exception:
            app.state.startup_failed = True
            log_lifespan(startup_failed=True)
            await database.dispose()
            raise
        log_lifespan(startup_failed=False)
        try:
            yield
        finally:
            await database.dispose()

    app = FastAPI(title="reference service", lifespan=lifespan)
    app.state.startup = manager

    async def round_trip() -> float:
        assert database.engine is not None
        started = time.monotonic()
        async with asyncio.timeout(_HEALTH_QUERY_TIMEOUT_S):
            async with database.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return round(time.monotonic() - started, 4)

    @app.get("/health")
    async def health(response: Response) -> dict:
        if manager.status != "ready":
            response.status_code = 503
            return {"status": "unhealthy", "startup": manager.status}
        try:
            latency_s = await round_trip()
        except Exception as exc:  # noqa: BLE001 - any database error means unhealthy
            response.status_code = 503
            return {"status": "unhealthy", "database": type(exc).__name__}
        return {"status": "healthy", "database_latency_s": latency_s}

    @app.get("/health/startup")
    async def startup_report() -> dict:
        return manager.report()

    @app.get("/api/ping")
    async def ping(response: Response) -> dict:
        try:
            return {"pong": True, "database_latency_s": await round_trip()}
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            response.status_code = 503
            return {"pong": False, "error": type(exc).__name__}

    return app
