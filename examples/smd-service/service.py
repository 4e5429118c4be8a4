"""smd-service: a backend whose startup logs exactly as the incident's service does, to
show the kit reading a log in the incident's own words.

A Starlette app under uvicorn. Its lifespan runs the deterministic startup sequence
(SMD) of seven phases, and logs each as the incident's service does, on stdout:

     CYCLE:  PHASE TRANSITION  ->  DATABASE
     PASS:  PHASE COMPLETED: INIT (0.012s)
     FAIL:  PHASE FAILED: DATABASE - Database initialization timeout after 3.0s

The DATABASE phase opens DB_POOL_SIZE connections at once (an asyncpg pool's
`min_size`), retrying what the database refuses until DATABASE_INITIALIZATION_TIMEOUT
seconds have passed. A phase that fails ends the lifespan: uvicorn logs "Application
startup failed. Exiting." (on stderr) and exits with code 3. It says nothing of why a
connect failed: the kit reports that cause as unreported.

Environment: DATABASE_URL, PORT, DB_POOL_SIZE (10), DATABASE_INITIALIZATION_TIMEOUT
(75), APP_NAME (smd: its sessions' application_name).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PHASES = ("INIT", "DEPENDENCIES", "DATABASE", "CACHE", "SERVICES", "WEBSOCKET", "FINALIZE")


def say(line: str) -> None:
    print(line, flush=True)


async def open_database() -> asyncpg.Pool:
    timeout = float(os.environ.get("DATABASE_INITIALIZATION_TIMEOUT", "75"))
    size = int(os.environ.get("DB_POOL_SIZE", "10"))
    deadline = time.monotonic() + timeout

    async def until_open() -> asyncpg.Pool:
        while True:
            try:
                return await asyncpg.create_pool(
                    os.environ["DATABASE_URL"],
                    min_size=size,
                    max_size=size,
                    server_settings={"application_name": os.environ.get("APP_NAME", "smd")},
                )
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    try:
        return await asyncio.wait_for(until_open(), timeout)
    except TimeoutError:
        raise RuntimeError(f"Database initialization timeout after {timeout}s") from None


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = None
    for phase in PHASES:
        say(f" CYCLE:  PHASE TRANSITION  ->  {phase}")
        began = time.monotonic()
        try:
            if phase == "DATABASE":
                pool = await open_database()
            else:
                await asyncio.sleep(0.01)
        except Exception as error:
            say(f" FAIL:  PHASE FAILED: {phase} - {error}")
            raise
        say(f" PASS:  PHASE COMPLETED: {phase} ({time.monotonic() - began:.3f}s)")
    app.state.pool = pool
    yield
    await pool.close()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/health", health)], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
