"""Running pressure as the registry holds it: a worker process and the sessions it opened.

Every pressure worker's sessions carry `application_name = chaos-<kind>-<run id>`.
Stopping asks the worker to release (it also does so by itself at its time limit or
when this process dies), then terminates server-side whatever it left behind; it is done
once, whoever asks first (an interrupted run releases its pressure at once, and its
rollbacks then record what was released).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import asyncpg

from chaoskit.kit import registry
from chaoskit.kit.dsn import connection_url
from chaoskit.kit.errors import KitError
from chaoskit.kit.sessions import KIT_PREFIX
from chaoskit.targets.workers.process import WorkerError, WorkerProcess

__all__ = [
    "APPLICATION_PREFIX",
    "PressureWorker",
    "release_pressure",
    "start_pressure",
    "stop_pressure",
]

APPLICATION_PREFIX = KIT_PREFIX
_RELEASE_WAIT_S = 15.0


async def _terminate_sessions(dsn: str, application_name: str) -> int:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except Exception:  # noqa: BLE001 - best effort: the worker already released or died
        return 0
    try:
        return await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND pid <> pg_backend_pid()",
            application_name,
        )
    finally:
        await conn.close()


class PressureWorker:
    def __init__(self, kind: str, name: str, worker: WorkerProcess, target_dsn: str, app: str):
        self.kind = kind
        self.name = name
        self.worker = worker
        self.target_dsn = target_dsn
        self.application_name = app
        self._stopping = threading.Lock()
        self._released: dict[str, Any] | None = None

    def stop(self) -> dict[str, Any]:
        """Release everything (once: a second call waits for the first and returns its
        report)."""
        with self._stopping:
            if self._released is None:
                report = self.worker.stop(_RELEASE_WAIT_S)
                report["terminated_server_side"] = asyncio.run(
                    _terminate_sessions(self.target_dsn, self.application_name)
                )
                self._released = report
            return dict(self._released)


def start_pressure(
    kind: str,
    name: str,
    module: str,
    params: dict[str, Any],
    ready_event: str,
    ready_timeout_s: float,
) -> dict[str, Any]:
    """Start the worker `module` with `params` (which name `target_dsn`), register it,
    and return its `ready_event` report with `name` and `application_name`."""
    if registry.lookup(kind, name) is not None:
        raise KitError(
            f"a {kind} named {name!r} is already running: stop it first or give another name"
        )
    application_name = f"{APPLICATION_PREFIX}{kind}-{uuid.uuid4().hex[:12]}"
    # the worker connects with asyncpg, which takes URLs only
    params = {**params, "target_dsn": connection_url(params["target_dsn"])}
    worker = WorkerProcess(
        module, application_name, {**params, "application_name": application_name}
    )
    pressure = PressureWorker(kind, name, worker, params["target_dsn"], application_name)
    registry.register(pressure)
    try:
        ready = worker.next_event(ready_event, ready_timeout_s)
    except WorkerError as error:
        registry.unregister(kind, name)
        pressure.stop()
        raise KitError(f"{kind} failed: {error}") from None
    ready.pop("event")
    return {"name": name, "application_name": application_name, **ready}


def stop_pressure(kind: str, name: str) -> dict[str, Any]:
    """Stop the pressure `name` of `kind`; `{"running": false}` when none runs (idempotent)."""
    pressure = registry.unregister(kind, name)
    if pressure is None:
        return {"name": name, "running": False}
    return {"name": name, "running": True, **pressure.stop()}


def release_pressure() -> list[str]:
    """Release every pressure running in this process now, still registered (its undo
    then records what was released), each whatever the others do; returns `<kind>
    <name>` of each, or raises the first failure once all were tried."""
    pressures = [p for p in registry.running() if isinstance(p, PressureWorker)]
    failures: list[Exception] = []
    for pressure in pressures:
        try:
            pressure.stop()
        except Exception as error:  # noqa: BLE001 - the next one is released all the same
            failures.append(error)
    if failures:
        raise failures[0]
    return [f"{p.kind} {p.name!r}" for p in pressures]
