"""The Startup Chaos Kit's one installed package.

The repository keeps each room of the design in a top-level folder (`actions/`,
`probes/`, `testbed/`, ...); installing the distribution maps each into this namespace
(`chaoskit.actions.flood`), so the kit never takes a generic top-level name that a
user's own project, or another package on PyPI, may already have.

`discover()` is what `chaos discover chaostoolkit-startup-chaos-kit` calls: it lists
every action and probe of the kit with its arguments and documentation. The
distribution's name starts with `chaostoolkit-`, as `chaos info extensions` lists.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DISTRIBUTION", "discover"]

DISTRIBUTION = "chaostoolkit-startup-chaos-kit"

ACTION_MODULES = (
    "chaoskit.actions.flood",
    "chaoskit.actions.service",
    "chaoskit.actions.connector",
    "chaoskit.actions.database",
    "chaoskit.actions.gcp.vpc_connector",
    "chaoskit.actions.gcp.cloud_run",
    "chaoskit.actions.gcp.cloud_sql",
    "chaoskit.actions.gcp.cloud_run_flood",
)
PROBE_MODULES = (
    "chaoskit.probes.service",
    "chaoskit.probes.connector",
    "chaoskit.probes.database",
    "chaoskit.probes.pressure",
    "chaoskit.probes.stop_conditions",
    "chaoskit.probes.gcp.monitoring",
    "chaoskit.probes.gcp.logging",
    "chaoskit.probes.gcp.cloud_run",
)


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Every activity of the Startup Chaos Kit (the kit discovers no system)."""
    # imported here: every process of the kit imports this package, and chaoslib takes
    # a second to import
    from importlib.metadata import version

    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    discovery = initialize_discovery_result(DISTRIBUTION, version(DISTRIBUTION), DISTRIBUTION)
    for module in ACTION_MODULES:
        discovery["activities"].extend(discover_actions(module))
    for module in PROBE_MODULES:
        discovery["activities"].extend(discover_probes(module))
    return discovery
