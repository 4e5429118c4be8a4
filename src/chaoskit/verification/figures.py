"""What a run had to work with, kept in its journal so that a later reader (the report,
`chaos gameday recommend`) can say what would have held: the settled configuration's
figures, and the database's and the connector's capacity when the method started."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.database import OBSERVER_SESSIONS, database_sessions
from chaoskit.testbed.connector.client import ConnectorClient

__all__ = ["capacity_at_rest", "run_figures"]


def run_figures(configuration: Configuration) -> dict[str, int | float]:
    """Every number the run was configured with (durations, counts, sizes): numbers
    only, so nothing secret."""
    return {
        key: value
        for key, value in sorted(configuration.items())
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def capacity_at_rest(configuration: Configuration) -> dict[str, Any]:
    """The database's `max_connections`, `reserved` slots and sessions `in_use_at_rest`
    (the kit's observer included), and the connector's `connector_instances`,
    `connector_connections_per_instance` and `connector_active_at_rest`: what the target
    could hold as the method began. Empty where the kit cannot see it (on staging the
    timeline reads Cloud Monitoring)."""
    capacity: dict[str, Any] = {}
    settings = RunSettings.of(configuration)
    admin = settings.admin_database_url
    if admin:
        try:
            sessions = database_sessions(admin)
        except KitError:
            sessions = None
        if sessions is not None:
            capacity.update(
                max_connections=sessions["max_connections"],
                reserved=sessions["reserved"],
                in_use_at_rest=sessions["in_use"] + OBSERVER_SESSIONS,
            )
    connector_url = settings.connector_url
    if connector_url:
        try:
            state = ConnectorClient(connector_url).state()
        except KitError:
            state = None
        if state is not None:
            capacity.update(
                connector_instances=state["instances"],
                connector_connections_per_instance=state["config"]["connections_per_instance"],
                connector_active_at_rest=state["active"],
            )
    return capacity
