"""Observations of the VPC connector model, through its control API."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chaoslib.types import Configuration

from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.connector import connector_client

__all__ = [
    "connector_events",
    "connector_state",
    "connector_utilisation",
    "wait_for_connector_event",
]


@activity
def connector_state(
    connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """The connector's state: `instances`, `capacity`, `active`, `waiting`, `utilisation`
    (active / capacity, 0..1), `demand` (active + waiting over capacity), `bytes_per_s`,
    `counts` (accepted, admitted, refused, queue_timeout, rate_delayed, abandoned:
    clients that gave up waiting), its `config`
    and `recent_events`.

    `connector_url` defaults to the configuration's `connector_url`.
    """
    return connector_client(connector_url, configuration).state()


@activity
def connector_utilisation(
    connector_url: str | None = None, configuration: Configuration | None = None
) -> float:
    """Active connections over capacity, from 0 to 1."""
    return connector_state(connector_url, configuration)["utilisation"]


def _epoch(since: float | str | None, configuration: Configuration | None) -> float:
    """`since` as epoch seconds; unset, the start of this run (the kit's control records
    it), so that events of an earlier run never count."""
    if since is None:
        return RunSettings.of(configuration).run_started_at or 0.0
    if isinstance(since, str):
        try:
            return datetime.fromisoformat(since).timestamp()
        except ValueError:
            raise KitError(
                f"since={since!r} is not a timestamp: give epoch seconds or ISO 8601"
            ) from None
    return float(since)


@activity
def connector_events(
    since: float | str | None = None,
    connector_url: str | None = None,
    configuration: Configuration | None = None,
) -> list[dict[str, Any]]:
    """Connector events (`scale_out_requested`, `scaled_out`, `connection_queue_timeout`,
    `reconfigured`, ...) at or after `since`, oldest first.

    `since` is seconds since the epoch, or an ISO 8601 timestamp; by default the start of
    this run. Each event has `seq`, `time` (epoch seconds), `at` (ISO 8601), `type` and
    its details.
    """
    return connector_client(connector_url, configuration).events(_epoch(since, configuration))


_MARGIN_S = 1.0


@activity
def wait_for_connector_event(
    event: str = "scaled_out",
    timeout_s: float | None = None,
    since: float | str | None = None,
    connector_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Wait for the first connector event of type `event` since `since` (default: the
    start of this run), as long as the connector's own clock says it can take.

    Arguments:
        event: the event's type, e.g. `scaled_out`.
        timeout_s: seconds to wait at most; by default what the physics needs: the time
            until a pending scale-out is due, or the cooldown left plus the scaling
            delay, plus a second.
        since: epoch seconds or ISO 8601.

    Returns `{"happened", "event", "waited_s", "timeout_s", "reason"}`: when it did not
    happen, `event` is null and `reason` says "did not happen within N s" (evidence for
    an expectation, not an error).
    """
    connector = connector_client(connector_url, configuration)
    start = _epoch(since, configuration)
    if timeout_s is None:
        state = connector.state()
        clock = state["autoscaler"]
        if clock["pending"]:
            timeout_s = clock["due_in_s"] + _MARGIN_S
        else:
            timeout_s = (
                clock["cooldown_remaining_s"] + state["config"]["scaling_delay_s"] + _MARGIN_S
            )
    started = time.monotonic()
    while True:
        found = [e for e in connector.events(start) if e["type"] == event]
        waited = round(time.monotonic() - started, 3)
        if found:
            return {
                "happened": True,
                "event": found[0],
                "waited_s": waited,
                "timeout_s": timeout_s,
                "reason": None,
            }
        if waited >= timeout_s:
            return {
                "happened": False,
                "event": None,
                "waited_s": waited,
                "timeout_s": timeout_s,
                "reason": f"{event} did not happen within {timeout_s:g}s",
            }
        time.sleep(0.05)
