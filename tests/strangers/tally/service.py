"""tally: a small ledger backend that is nothing like a FastAPI app.

Stack: the standard library's ThreadingHTTPServer (no framework, no event loop) and
pg8000, the pure-Python PostgreSQL driver, with a pool of its own (a queue of
connections). Boot is five stages run in order:

    read-env -> dial-postgres -> probe-ledger -> prime-cache -> open-listener

`dial-postgres` opens the whole pool at once (one thread per connection); an attempt
that does not get every connection gives back what it got, pauses and tries again,
until the stage's deadline (TALLY_DB_DEADLINE) is spent.

Log: one line per event on stdout, epoch milliseconds first, durations in microseconds:

    1733295601250 tally#4242 [dial-postgres] begin
    1733295601271 tally#4242 [dial-postgres] retry 1: DatabaseError: {... 'C': '53300', ...}
    1733295604252 tally#4242 [dial-postgres] EXPIRED in 3001234us (deadline 3s spent); last: ...
    1733295604252 tally#4242 boot halted: 3 stage(s) skipped (probe-ledger, ...); exit 75

Exit codes: 75 (EX_TEMPFAIL) when the boot fails, 64 (EX_USAGE) for bad settings,
0 after SIGTERM/SIGINT.

Settings (environment):
    TALLY_DSN            postgresql://user:pass@host:port/db   (required)
    TALLY_LISTEN         host:port to serve on                 (127.0.0.1:7070)
    TALLY_POOL           connections the pool opens at once    (6)
    TALLY_DB_DEADLINE    dial-postgres stage's deadline        (20s)
    TALLY_DIAL_TIMEOUT   one connect's deadline                (5s)
    TALLY_REDIAL_PAUSE   pause between two attempts            (250ms)
    TALLY_APPNAME        application_name of its sessions      (tally)
    TALLY_STAGE_PAUSE    simulated work in the other stages    (20ms)
Durations take a unit (us, ms, s, m, h, combined as in 1m5s); a bare number is seconds.

HTTP: GET /ready (200 when booted and a pooled connection answers SELECT 1, else 503),
GET /boot (the stage report as JSON).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pg8000.dbapi

EXIT_BOOT_FAILED = 75
EXIT_USAGE = 64
STAGES = ["read-env", "dial-postgres", "probe-ledger", "prime-cache", "open-listener"]
_PID = os.getpid()
_out_lock = threading.Lock()


def say(text: str) -> None:
    line = f"{int(time.time() * 1000)} tally#{_PID} {text}\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class Usage(Exception):
    pass


class StageFailed(Exception):
    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind  # "EXPIRED" or "broke"


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


def duration(name: str, default: str) -> float:
    raw = os.environ.get(name, default).strip()
    try:
        return float(raw)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(raw) or not raw:
        raise Usage(f"{name}={raw!r} is not a duration (e.g. 3s, 250ms, 1m5s)")
    return total


def whole(name: str, default: str) -> int:
    raw = os.environ.get(name, default).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise Usage(f"{name}={raw!r} is not a whole number >= 1")
    return int(raw)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text.replace("\n", " ")


def fatal_for_good(exc: BaseException) -> bool:
    """Errors waiting will not fix: wrong password, no such database or role."""
    text = str(exc)
    return any(code in text for code in ("'28P01'", "'28000'", "'3D000'"))


class Pool:
    def __init__(self, conns: list):
        self.size = len(conns)
        self._q: queue.Queue = queue.Queue()
        for c in conns:
            self._q.put(c)

    def run(self, sql: str, *args, wait_s: float = 2.0):
        conn = self._q.get(timeout=wait_s)
        try:
            cur = conn.cursor()
            if args:
                cur.execute(sql, args)
            else:
                cur.execute(sql)
            return cur.fetchall()
        finally:
            self._q.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._q.get_nowait().close()
            except queue.Empty:
                return
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


class Tally:
    def __init__(self) -> None:
        self.report: dict[str, dict] = {s: {"state": "pending"} for s in STAGES}
        self.booted = False
        self.pool: Pool | None = None
        self.server: ThreadingHTTPServer | None = None
        self.cfg: dict = {}

    # -- stages -------------------------------------------------------------------------
    def read_env(self) -> None:
        dsn = os.environ.get("TALLY_DSN", "")
        if not dsn:
            raise Usage("TALLY_DSN is not set")
        u = urlsplit(dsn)
        if u.scheme not in ("postgres", "postgresql") or not u.hostname:
            raise Usage("TALLY_DSN is not a postgresql:// URL")
        host, _, port = os.environ.get("TALLY_LISTEN", "127.0.0.1:7070").rpartition(":")
        if not host or not port.isdigit():
            raise Usage("TALLY_LISTEN is not host:port")
        self.cfg = {
            "user": unquote(u.username or "postgres"),
            "password": unquote(u.password) if u.password else None,
            "host": u.hostname,
            "port": u.port or 5432,
            "database": unquote(u.path.lstrip("/")) or None,
            "listen": (host, int(port)),
            "pool": whole("TALLY_POOL", "6"),
            "deadline": duration("TALLY_DB_DEADLINE", "20s"),
            "dial_timeout": duration("TALLY_DIAL_TIMEOUT", "5s"),
            "redial_pause": duration("TALLY_REDIAL_PAUSE", "250ms"),
            "appname": os.environ.get("TALLY_APPNAME", "tally"),
            "stage_pause": duration("TALLY_STAGE_PAUSE", "20ms"),
        }

    def _dial_once(self, timeout: float) -> list:
        c = self.cfg
        got: list = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def one() -> None:
            try:
                conn = pg8000.dbapi.connect(
                    user=c["user"],
                    password=c["password"],
                    host=c["host"],
                    port=c["port"],
                    database=c["database"],
                    timeout=timeout,
                    application_name=c["appname"],
                )
            except BaseException as exc:  # noqa: BLE001 - reported whole
                with lock:
                    errors.append(exc)
                return
            with lock:
                got.append(conn)

        threads = [threading.Thread(target=one, daemon=True) for _ in range(c["pool"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 1.0)
        if len(got) == c["pool"] and not errors:
            return got
        for conn in got:  # all or nothing: give back what this attempt got
            with contextlib.suppress(Exception):
                conn.close()
        if errors:
            raise errors[0]
        raise TimeoutError(f"only {len(got)} of {c['pool']} connections came within {timeout:.3f}s")

    def dial_postgres(self) -> None:
        c = self.cfg
        t0 = time.monotonic()
        deadline = t0 + c["deadline"]
        attempt = 0
        last = "no attempt made"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                spent = os.environ.get("TALLY_DB_DEADLINE", "20s")
                raise StageFailed("EXPIRED", f"(deadline {spent} spent); last: {last}")
            attempt += 1
            try:
                conns = self._dial_once(min(c["dial_timeout"], max(left, 0.05)))
            except Exception as exc:
                last = describe(exc)
                if fatal_for_good(exc):
                    raise StageFailed("broke", last) from exc
                say(f"[dial-postgres] retry {attempt}: {last}")
                time.sleep(max(0.0, min(c["redial_pause"], deadline - time.monotonic())))
                continue
            self.pool = Pool(conns)
            return

    def probe_ledger(self) -> None:
        assert self.pool is not None
        rows = self.pool.run("SELECT current_database(), current_setting('max_connections')")
        self.report["probe-ledger"]["database"] = rows[0][0]
        time.sleep(self.cfg["stage_pause"])

    def prime_cache(self) -> None:
        time.sleep(self.cfg["stage_pause"])

    def open_listener(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # the access log stays quiet
                pass

            def _send(self, code: int, body: str, ctype: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/ready":
                    if not app.booted or app.pool is None:
                        return self._send(503, "booting\n")
                    try:
                        app.pool.run("SELECT 1")
                    except Exception as exc:  # noqa: BLE001
                        return self._send(503, f"database: {describe(exc)}\n")
                    return self._send(200, "ready\n")
                if self.path == "/boot":
                    return self._send(200, json.dumps(app.report), "application/json")
                return self._send(404, "no such thing\n")

        self.server = ThreadingHTTPServer(self.cfg["listen"], Handler)
        self.server.daemon_threads = True

    # -- boot -------------------------------------------------------------------------
    def boot(self) -> int:
        steps = {
            "read-env": self.read_env,
            "dial-postgres": self.dial_postgres,
            "probe-ledger": self.probe_ledger,
            "prime-cache": self.prime_cache,
            "open-listener": self.open_listener,
        }
        for i, stage in enumerate(STAGES):
            say(f"[{stage}] begin")
            t0 = time.monotonic()
            self.report[stage]["state"] = "running"
            try:
                steps[stage]()
            except Usage as exc:
                us = int((time.monotonic() - t0) * 1e6)
                self.report[stage].update(state="broke", us=us)
                say(f"[{stage}] broke in {us}us: bad setting: {exc}")
                say(f"boot halted: bad settings; exit {EXIT_USAGE}")
                return EXIT_USAGE
            except Exception as exc:  # noqa: BLE001 - any failure ends the boot
                us = int((time.monotonic() - t0) * 1e6)
                kind = exc.kind if isinstance(exc, StageFailed) else "broke"
                text = str(exc) if isinstance(exc, StageFailed) else describe(exc)
                self.report[stage].update(state=kind, us=us)
                sep = " " if kind == "EXPIRED" else ": "
                say(f"[{stage}] {kind} in {us}us{sep}{text}")
                skipped = STAGES[i + 1 :]
                for s in skipped:
                    self.report[s]["state"] = "skipped"
                names = ", ".join(skipped)
                say(
                    f"boot halted: {len(skipped)} stage(s) skipped ({names}); "
                    f"exit {EXIT_BOOT_FAILED}"
                )
                if self.pool is not None:
                    self.pool.close()
                return EXIT_BOOT_FAILED
            us = int((time.monotonic() - t0) * 1e6)
            self.report[stage].update(state="ok", us=us)
            say(f"[{stage}] ok in {us}us")
        self.booted = True
        host, port = self.cfg["listen"]
        say(f"serving on http://{host}:{port} (pool {self.pool.size if self.pool else 0})")
        return 0


def main() -> int:
    app = Tally()
    stop = threading.Event()

    def on_signal(signum, _frame):
        say(f"signal {signal.Signals(signum).name}: closing")
        stop.set()
        if app.server is not None:
            threading.Thread(target=app.server.shutdown, daemon=True).start()
        else:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = app.boot()
    if code:
        return code
    assert app.server is not None
    app.server.serve_forever(poll_interval=0.2)
    app.server.server_close()
    if app.pool is not None:
        app.pool.close()
    say("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
