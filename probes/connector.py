"""Observations of the VPC connector model, through its control API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskit.kit.errors import activity
from chaoskit.targets.connector import connector_client

__all__ = ["connector_events", "connector_state", "connector_utilisation"]


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


@activity
def connector_events(
    since: float | str = 0.0,
    connector_url: str | None = None,
    configuration: Configuration | None = None,
) -> list[dict[str, Any]]:
    """Connector events (`scale_out_requested`, `scaled_out`, `connection_queue_timeout`,
    `reconfigured`, ...) at or after `since`, oldest first.

    `since` is seconds since the epoch, or an ISO 8601 timestamp. Each event has `seq`,
    `time` (epoch seconds), `at` (ISO 8601), `type` and its details.
    """
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since).timestamp()
        except ValueError:
            raise ActivityFailed(
                f"since={since!r} is not a timestamp: give epoch seconds or ISO 8601"
            ) from None
    return connector_client(connector_url, configuration).events(since)
