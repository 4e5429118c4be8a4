"""Where an experiment acts: the embedded testbed, or staging on Google Cloud.

The configuration key `target` says which (`embedded` unless a profile says otherwise;
`experiments/profiles/staging.json` says `staging`). Activities that have a staging
equivalent take the configuration and dispatch on it, so the same experiment file runs
in both places: a fresh service instance becomes a Cloud Run cold start, the flood a
Cloud Run Job inside the VPC. Activities that only make sense on the testbed (the
connector model's knobs) are not in `STAGING_ACTIVITIES`, and the kit's guardrails
refuse an experiment that uses them on staging before anything runs.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import TARGETS, RunSettings

__all__ = [
    "STAGING_ACTIVITIES",
    "TARGETS",
    "deployment_target",
    "on_staging",
    "staging_setting",
    "without_staging_equivalent",
]

# (module, function) of every activity that does the right thing on staging: it
# dispatches to Google Cloud, or it only observes through URLs the profile gives.
STAGING_ACTIVITIES = frozenset(
    {
        ("chaoskit.actions.service", "start_service_instance"),
        ("chaoskit.actions.service", "stop_service_instance"),
        ("chaoskit.actions.flood", "start_connection_flood"),
        ("chaoskit.actions.flood", "stop_connection_flood"),
        ("chaoskit.actions.database", "start_lock_pressure"),
        ("chaoskit.actions.database", "stop_lock_pressure"),
        ("chaoskit.probes.service", "service_health"),
        ("chaoskit.probes.service", "observe_startup"),
        ("chaoskit.probes.service", "cold_start"),
        ("chaoskit.probes.service", "repeated_cold_starts"),
        ("chaoskit.probes.database", "connection_time"),
        ("chaoskit.probes.database", "pool_utilisation"),
        ("chaoskit.probes.database", "server_pressure"),
        ("chaoskit.probes.pressure", "compound_pressure"),
        ("chaoskit.probes.pressure", "early_warning"),
        # a wait touches no target: it is the same on staging
        ("chaosaddons.utils.idle", "idle_for"),
    }
)
_GOOGLE_CLOUD_MODULES = ("chaoskit.actions.gcp.", "chaoskit.probes.gcp.")


def deployment_target(configuration: Configuration | None) -> str:
    """`embedded` or `staging` (the settings refuse any other value with one line)."""
    return RunSettings.of(configuration).target


def on_staging(configuration: Configuration | None) -> bool:
    return RunSettings.of(configuration).on_staging


def staging_setting(configuration: Configuration | None, key: str, purpose: str) -> Any:
    """The configuration's `key`, which staging needs for `purpose`; refused when unset."""
    value = RunSettings.of(configuration).value(key)
    if value in (None, ""):
        # a profile spells gcp_<name> as <name> inside its `gcp` object
        field = f"gcp.{key[4:]}" if key.startswith("gcp_") else key
        raise KitError(
            f"configuration {field} is not set: staging needs it for {purpose} (the staging "
            "profile sets it; give it in a var-file of your own if you use another)"
        )
    return value


def without_staging_equivalent(module: str, func: str) -> bool:
    """Whether the activity would act on the testbed, not staging, if run there."""
    if module.startswith(_GOOGLE_CLOUD_MODULES):
        return False
    return (module, func) not in STAGING_ACTIVITIES
