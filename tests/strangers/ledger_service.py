"""ledger-service: a backend the kit was not written around, for the tests.

Synchronous: the standard library's `http.server` and psycopg 3, no asyncio. Its
startup logs logfmt lines on **stderr**, durations in milliseconds:

    ts=2026-12-04T07:00:00.120Z level=info step=db-pool msg=begin
    ts=2026-12-04T07:00:00.180Z level=warn step=db-pool msg=retry attempt=1 err="..."
    ts=2026-12-04T07:00:03.121Z level=error step=db-pool msg=gave-up dur_ms=3001 err="..."
    ts=2026-12-04T07:00:03.122Z level=fatal msg="startup failed" code=1

`db-pool` opens LEDGER_POOL connections at once (all or none, retried until
LEDGER_DEADLINE_MS has passed since the step began); then `ledger-schema` reads the
migrations table and `http` serves GET /ready. A startup that gives up exits 1.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg


def log(level: str, **fields: object) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    parts = [f"ts={stamp}", f"level={level}"]
    for key, value in fields.items():
        text = str(value)
        parts.append(f'{key}="{text}"' if " " in text or not text else f"{key}={text}")
    print(" ".join(parts), file=sys.stderr, flush=True)


def open_pool(url: str, size: int, deadline: float) -> list[psycopg.Connection]:
    attempt = 0
    while True:
        attempt += 1
        opened: list[psycopg.Connection] = []
        try:
            for _ in range(size):
                left = max(1, int(deadline - time.monotonic()))
                opened.append(
                    psycopg.connect(
                        url, connect_timeout=left, application_name=os.environ["LEDGER_APP"]
                    )
                )
            return opened
        except psycopg.OperationalError as error:
            for conn in opened:
                conn.close()
            message = " ".join(str(error).split())
            if time.monotonic() + 0.1 >= deadline:
                raise TimeoutError(message) from None
            log("warn", step="db-pool", msg="retry", attempt=attempt, err=message)
            time.sleep(0.1)


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    url = os.environ["LEDGER_DB"]
    size = int(os.environ["LEDGER_POOL"])
    deadline_s = int(os.environ["LEDGER_DEADLINE_MS"]) / 1000
    started = time.monotonic()
    log("info", step="db-pool", msg="begin")
    try:
        pool = open_pool(url, size, started + deadline_s)
    except TimeoutError as error:
        log(
            "error",
            step="db-pool",
            msg="gave-up",
            dur_ms=round((time.monotonic() - started) * 1000),
            err=str(error),
        )
        log("fatal", msg="startup failed", code=1)
        return 1
    log("info", step="db-pool", msg="ok", dur_ms=round((time.monotonic() - started) * 1000))
    began = time.monotonic()
    log("info", step="ledger-schema", msg="begin")
    pool[0].execute("SELECT count(*) FROM schema_migrations").fetchone()
    log("info", step="ledger-schema", msg="ok", dur_ms=round((time.monotonic() - began) * 1000))
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["LEDGER_PORT"])), Ready)
    log("info", step="http", msg="ok", dur_ms=0)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
