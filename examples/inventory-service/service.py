"""inventory-service: a backend that is nothing like the kit's reference service, to show
the kit testing a service of your own.

Plain asyncio and asyncpg, no framework. Its startup runs four steps and logs each with
Python's `logging` as text lines:

    07:00:00,120 INFO inventory: step read-settings started
    07:00:00,121 INFO inventory: step read-settings done in 0.001s
    07:00:00,121 INFO inventory: step connect-database started
    07:00:00,140 WARNING inventory: step connect-database attempt 1 failed
                 (too_many_connections): retrying in 0.20s
    07:00:05,122 ERROR inventory: step connect-database gave up after 5.001s
                 (too_many_connections)
    07:00:05,123 CRITICAL inventory: startup aborted, exiting with code 1

(each on one line, after the date).

`connect-database` opens POOL_SIZE connections (an asyncpg pool's `min_size`), retrying
with exponential backoff until STARTUP_DEADLINE_S has passed since the step began; then
`load-catalogue` reads the schema table and `serve-http` answers GET /healthz. A startup
that gives up exits with code 1.

Environment: DATABASE_URL, PORT, POOL_SIZE (5), STARTUP_DEADLINE_S (10),
CONNECT_TIMEOUT_S (2), RETRY_BASE_S (0.2), APPLICATION_NAME (inventory: its sessions'
application_name in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import asyncpg

log = logging.getLogger("inventory")
STEPS = ("read-settings", "connect-database", "load-catalogue", "serve-http")


class GaveUp(Exception):
    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def cause_of(error: BaseException) -> str:
    """The kit's words for why a connect failed."""
    if isinstance(error, asyncpg.TooManyConnectionsError):
        return "too_many_connections"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "connect_timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    return type(error).__name__


async def connect_database(settings: dict[str, float | str]) -> asyncpg.Pool:
    """A pool of POOL_SIZE connections, retried with backoff until the deadline."""
    deadline = time.monotonic() + float(settings["deadline_s"])
    delay, attempt, cause = float(settings["retry_base_s"]), 0, "connect_timeout"
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise GaveUp(cause)
        try:
            return await asyncio.wait_for(
                asyncpg.create_pool(
                    str(settings["database_url"]),
                    min_size=int(settings["pool_size"]),
                    max_size=int(settings["pool_size"]),
                    timeout=float(settings["connect_timeout_s"]),
                    server_settings={"application_name": str(settings["application_name"])},
                ),
                timeout=left,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            cause = cause_of(error)
            wait = min(delay, max(0.0, deadline - time.monotonic()))
            log.warning(
                "step connect-database attempt %d failed (%s): retrying in %.2fs",
                attempt,
                cause,
                wait,
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, 2.0)


async def health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # the whole request, headers too: closing on unread bytes resets the connection
    # and the client may lose the answer
    try:
        request = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    ok = request.startswith(b"GET /healthz ")
    body = b"ok" if ok else b"not found"
    status = b"200 OK" if ok else b"404 Not Found"
    writer.write(
        b"HTTP/1.1 "
        + status
        + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    writer.close()


async def main() -> int:
    settings: dict[str, float | str] = {}
    pool = None
    for step in STEPS:
        log.info("step %s started", step)
        began = time.monotonic()
        try:
            if step == "read-settings":
                settings = {
                    "database_url": os.environ["DATABASE_URL"],
                    "port": int(os.environ.get("PORT", "8080")),
                    "pool_size": int(os.environ.get("POOL_SIZE", "5")),
                    "deadline_s": float(os.environ.get("STARTUP_DEADLINE_S", "10")),
                    "connect_timeout_s": float(os.environ.get("CONNECT_TIMEOUT_S", "2")),
                    "retry_base_s": float(os.environ.get("RETRY_BASE_S", "0.2")),
                    "application_name": os.environ.get("APPLICATION_NAME", "inventory"),
                }
            elif step == "connect-database":
                pool = await connect_database(settings)
            elif step == "load-catalogue":
                assert pool is not None
                await pool.fetchval("SELECT count(*) FROM schema_migrations")
            else:
                server = await asyncio.start_server(health, "127.0.0.1", int(settings["port"]))
        except GaveUp as failure:
            log.error(
                "step %s gave up after %.3fs (%s)", step, time.monotonic() - began, failure.cause
            )
            log.critical("startup aborted, exiting with code 1")
            return 1
        except Exception as error:  # noqa: BLE001 - any other failure ends the startup
            log.error(
                "step %s failed after %.3fs (%s)", step, time.monotonic() - began, cause_of(error)
            )
            log.critical("startup aborted, exiting with code 1")
            return 1
        log.info("step %s done in %.3fs", step, time.monotonic() - began)
    log.info("inventory-service is up on port %s", settings["port"])
    async with server:
        await server.serve_forever()
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(main()))
