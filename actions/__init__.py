"""Perturbations, as Chaos Toolkit Python activities.

`discover()` is what `chaos discover startup-chaos-kit` calls: it lists every action
and probe of the kit with its arguments and documentation.
"""

from __future__ import annotations

from chaoslib.discovery.discover import (
    discover_actions,
    discover_probes,
    initialize_discovery_result,
)
from chaoslib.types import Discovery

__all__ = ["discover"]

ACTION_MODULES = (
    "actions.flood",
    "actions.service",
    "actions.connector",
    "actions.database",
    "actions.gcp.vpc_connector",
    "actions.gcp.cloud_run",
    "actions.gcp.cloud_sql",
    "actions.gcp.flood_job",
)
PROBE_MODULES = (
    "probes.service",
    "probes.connector",
    "probes.database",
    "probes.pressure",
    "probes.gcp.monitoring",
    "probes.gcp.logging",
    "probes.gcp.cloud_run",
)


def discover(discover_system: bool = True) -> Discovery:
    """Every activity of the Startup Chaos Kit (the kit discovers no system)."""
    from importlib.metadata import version

    discovery = initialize_discovery_result(
        "startup-chaos-kit", version("startup-chaos-kit"), "startup-chaos-kit"
    )
    for module in ACTION_MODULES:
        discovery["activities"].extend(discover_actions(module))
    for module in PROBE_MODULES:
        discovery["activities"].extend(discover_probes(module))
    return discovery
