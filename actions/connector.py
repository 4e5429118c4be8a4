"""Perturb the VPC connector model through its control API.

The first change an experiment makes saves the connector's configuration;
`restore_connector()` (the rollback) puts that configuration back. Every action takes
the control API's URL as `connector_url`, or from the configuration key `connector_url`
that the testbed control fills in.
"""

from __future__ import annotations

from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskit.actions.undo import remember_first, undo

__all__ = [
    "restore_connector",
    "scale_connector",
    "set_connector_capacity",
    "set_scaling_delay",
    "throttle_connector_throughput",
]

KIND = "connector-change"
_TIMEOUT_S = 10.0


def connector_api(connector_url: str | None, configuration: Configuration | None) -> str:
    """The control API's base URL, from the argument or the configuration."""
    url = connector_url or (configuration or {}).get("connector_url")
    if not url:
        raise ActivityFailed(
            "connector_url is not set: pass it, or run on the embedded testbed whose control "
            "fills it in (chaos testbed status shows it)"
        )
    return url.rstrip("/")


def call_connector(method: str, url: str, path: str, body: Any = None) -> Any:
    """One control API call; errors become one-line ActivityFailed messages."""
    try:
        response = httpx.request(method, f"{url}{path}", json=body, timeout=_TIMEOUT_S)
    except httpx.HTTPError as error:
        raise ActivityFailed(
            f"the connector's control API at {url} is unreachable ({type(error).__name__}): "
            "is the testbed up? (chaos testbed status)"
        ) from None
    if response.status_code == 400:
        raise ActivityFailed(f"the connector refused the change: {response.json()['error']}")
    if response.status_code >= 400:
        raise ActivityFailed(f"the connector answered {response.status_code} to {method} {path}")
    return response.json()


def _change(
    changes: dict[str, Any], connector_url: str | None, configuration: Configuration | None
) -> dict[str, Any]:
    url = connector_api(connector_url, configuration)

    def save() -> Any:
        baseline = call_connector("GET", url, "/state")["config"]
        return lambda: {"restored": call_connector("PUT", url, "/config", baseline)}

    remember_first(KIND, url, save)
    return call_connector("PUT", url, "/config", changes)


def set_connector_capacity(
    connections_per_instance: int | None = None,
    overflow: str | None = None,
    queue_timeout_s: float | None = None,
    connector_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Change how many connections each connector instance carries, and what happens above.

    Arguments:
        connections_per_instance: concurrent connections per instance (capacity is
            instances x this).
        overflow: `queue` (wait for a slot up to `queue_timeout_s`) or `refuse`.
        queue_timeout_s: seconds a connection above capacity waits before it is closed.
        connector_url: the control API (default: the configuration's `connector_url`).

    Returns the connector's whole configuration after the change.
    """
    changes = {
        key: value
        for key, value in (
            ("connections_per_instance", connections_per_instance),
            ("overflow", overflow),
            ("queue_timeout_s", queue_timeout_s),
        )
        if value is not None
    }
    if not changes:
        raise ActivityFailed(
            "set_connector_capacity needs connections_per_instance, overflow or queue_timeout_s"
        )
    return _change(changes, connector_url, configuration)


def scale_connector(
    instances: int, connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Set the number of connector instances (between its min and max), as an operator would.

    Returns the connector's whole configuration after the change.
    """
    return _change({"instances": instances}, connector_url, configuration)


def set_scaling_delay(
    scaling_delay_s: float,
    cooldown_s: float | None = None,
    connector_url: str | None = None,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """Set how slowly the connector scales out.

    Arguments:
        scaling_delay_s: seconds between a scale-out request and the new instance
            (staging: 30-60 s).
        cooldown_s: seconds after a scale-out before another may be requested
            (staging: 180 s); unchanged when omitted.

    Returns the connector's whole configuration after the change.
    """
    changes: dict[str, Any] = {"scaling_delay_s": scaling_delay_s}
    if cooldown_s is not None:
        changes["cooldown_s"] = cooldown_s
    return _change(changes, connector_url, configuration)


def throttle_connector_throughput(
    mbps: float, connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Cap the connector's throughput at `mbps` megabits per second in each direction.

    Below the instances' share (100 Mbps each on e2-micro), this is what a saturated
    connector gives. Returns the connector's whole configuration after the change.
    """
    return _change({"throughput_cap_mbps": mbps}, connector_url, configuration)


def restore_connector(
    connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Put back the configuration saved before this experiment's first change; idempotent.

    Returns `{"restored": bool, "state": <the connector's state afterwards>}`: `restored`
    is false when nothing had been changed.
    """
    url = connector_api(connector_url, configuration)
    restored = undo(KIND, url)
    return {"restored": restored is not None, "state": call_connector("GET", url, "/state")}
