"""Connection flood: hold many real PostgreSQL connections from a worker process.

The flood opens `connections` real asyncpg connections and holds them while the rest of
the experiment runs, so that a fresh service instance cannot fill its pool. Every
connection carries `application_name = chaos-flood-<run id>`, so that a last-resort
cleanup can terminate them server-side.

On staging (configuration `target: staging`) the flood must come from inside the VPC,
through the Serverless VPC Access connector: it runs as the Cloud Run Job
`chaos-<name>` (`chaoskit.targets.flood.cloud_run_job`), with the image, database-URL
secret and connector the profile names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError, activity
from chaoskit.targets.flood.dispatch import start_flood, stop_flood

__all__ = ["start_connection_flood", "stop_connection_flood"]

DEFAULT_CAP = 1000


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise KitError(message)


@activity
def start_connection_flood(
    connections: int,
    target_dsn: str,
    ramp_s: float = 0.0,
    hold_s: float = 60.0,
    connect_timeout_s: float = 5.0,
    concurrency: int = 64,
    name: str = "flood",
    cap: int = DEFAULT_CAP,
    allowed_targets: Sequence[str] = (),
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Open `connections` real PostgreSQL connections and hold them in a worker process.

    Arguments:
        connections: how many connections to open (at most `cap`, default 1,000).
        target_dsn: the PostgreSQL URL to flood; loopback only unless its host is in
            `allowed_targets`.
        ramp_s: seconds over which the connects are spread (0 = as fast as possible).
        hold_s: seconds the connections are held after the ramp; then the worker
            releases them by itself.
        connect_timeout_s: seconds one connect may take before it counts as failed.
        concurrency: connects in flight at once.
        name: names this flood, for `stop_connection_flood`.
        cap: the largest `connections` accepted.
        allowed_targets: non-loopback hosts that may be flooded.

    Returns the ramp's outcome once every connect has succeeded or failed: `attempted`,
    `established`, `failed` (count by cause, e.g. `too_many_connections`),
    `connect_latency` percentiles in seconds, `connections_per_s`, and the
    `application_name` the connections carry. The flood goes on holding afterwards.
    As other clients keep trying, connects the database refused as full are tried
    again, one at a time, once the burst has settled (PostgreSQL refuses a burst before
    its room is full: it counts backends still authenticating), until `connections`
    are held or it refuses one more: `retried` counts them, `room_full` says it refused,
    and `room` how full the database was at the ramp's end (`max_connections`,
    `reserved`, `in_use`, `left` to an application).

    On staging, `target_dsn` is not used: the Cloud Run Job reads the database URL from
    the secret `gcp_flood_dsn_secret`, and spreads the connections over tasks of at most
    `gcp_flood_connections_per_task` (default 25), `concurrency` shared by them (at
    least one each). The outcome has the same keys, summed over the tasks (latency
    percentiles: the worst task's).
    """
    _require(
        isinstance(connections, int) and 0 < connections <= cap,
        f"connections={connections!r} is out of range: give a whole number from 1 to the "
        f"cap of {cap} (raise `cap` explicitly to go higher)",
    )
    for field, value in (("ramp_s", ramp_s), ("hold_s", hold_s)):
        _require(value >= 0, f"{field}={value!r} must be >= 0 seconds")
    _require(connect_timeout_s > 0, f"connect_timeout_s={connect_timeout_s!r} must be > 0")
    _require(concurrency > 0, f"concurrency={concurrency!r} must be > 0")
    flood = {
        "connections": connections,
        "target_dsn": target_dsn,
        "ramp_s": ramp_s,
        "hold_s": hold_s,
        "connect_timeout_s": connect_timeout_s,
        "concurrency": concurrency,
    }
    return start_flood(name, flood, allowed_targets, configuration, secrets)


@activity
def stop_connection_flood(
    name: str = "flood", configuration: Configuration | None = None
) -> dict[str, Any]:
    """Release every connection of the flood `name` and stop its worker.

    Idempotent: stopping a flood that is not running returns `{"running": false}`.
    Returns `released` (connections closed by the worker), `release_s` (seconds it
    took), `terminated_server_side` (sessions that had to be terminated by the server)
    and the worker's `exit_code`. On staging it cancels the Cloud Run Job's execution
    and returns `{"job", "running", "cancelled"}`.
    """
    return stop_flood(name, configuration)
