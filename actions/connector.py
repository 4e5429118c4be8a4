"""Perturb the VPC connector model through its control API.

The first change an experiment makes saves the connector's configuration;
`restore_connector()` (the rollback) puts that configuration back. Every action takes
the control API's URL as `connector_url`, or from the configuration key `connector_url`
that the testbed control fills in.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration

from chaoskit.actions.undo import remember_first, undo
from chaoskit.kit.errors import KitError, activity
from chaoskit.targets.connector import connector_client

__all__ = [
    "restore_connector",
    "scale_connector",
    "set_connector_capacity",
    "set_scaling_delay",
    "throttle_connector_throughput",
]

KIND = "connector-change"


def _change(
    changes: dict[str, Any], connector_url: str | None, configuration: Configuration | None
) -> dict[str, Any]:
    connector = connector_client(connector_url, configuration)

    def save() -> Any:
        # every run starts from the connector's baseline, so its reset restores what the
        # run found: configuration, instances and the autoscaler's clock
        return lambda: {"reset_to": connector.reset()}

    remember_first(KIND, connector.url, save)
    return connector.configure(changes)


@activity
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
        raise KitError(
            "set_connector_capacity needs connections_per_instance, overflow or queue_timeout_s"
        )
    return _change(changes, connector_url, configuration)


@activity
def scale_connector(
    instances: int, connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Set the number of connector instances (between its min and max), as an operator would.

    Returns the connector's whole configuration after the change.
    """
    return _change({"instances": instances}, connector_url, configuration)


@activity
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


@activity
def throttle_connector_throughput(
    mbps: float, connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Cap the connector's throughput at `mbps` megabits per second in each direction.

    Below the instances' share (100 Mbps each on e2-micro), this is what a saturated
    connector gives. Returns the connector's whole configuration after the change.
    """
    return _change({"throughput_cap_mbps": mbps}, connector_url, configuration)


@activity
def restore_connector(
    connector_url: str | None = None, configuration: Configuration | None = None
) -> dict[str, Any]:
    """Put the connector back as the run found it: its starting configuration, its
    instances (a scale-out during the run included) and its autoscaler's clock (no
    pending scale-out, no cooldown); idempotent.

    Returns `{"restored": bool, "reset": [what had changed], "state": <the connector's
    state afterwards>}`: `restored` is false when nothing had changed.
    """
    connector = connector_client(connector_url, configuration)
    drift = connector.state()["drift"]
    undo(KIND, connector.url)
    if drift:
        connector.reset()
    return {"restored": bool(drift), "reset": drift, "state": connector.state()}
