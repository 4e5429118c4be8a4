"""The connection flood, wherever the experiment acts: a worker process of this machine
holding real asyncpg connections on the embedded testbed, the Cloud Run Job
`chaos-<name>` inside the VPC, through the Serverless VPC Access connector, on staging.

Every flood connection carries `application_name = chaos-flood-<run id>`, so the timeline
can count them and a last-resort cleanup can terminate them server-side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.load_targets import check_load_target
from chaoskit.targets.deployment import on_staging, staging_setting
from chaoskit.targets.flood.cloud_run_job import start_cloud_run_flood, stop_cloud_run_flood
from chaoskit.targets.workers.pressure import APPLICATION_PREFIX, start_pressure, stop_pressure

__all__ = ["FLOOD_PREFIX", "start_flood", "stop_flood"]

KIND = "flood"
FLOOD_PREFIX = f"{APPLICATION_PREFIX}{KIND}-"


def _cloud_run_job(name: str) -> str:
    """The Cloud Run Job that holds the flood `name` on staging."""
    return f"chaos-{name}"


def start_flood(
    name: str,
    flood: dict[str, Any],
    allowed_targets: Sequence[str],
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Open `flood["connections"]` connections to `flood["target_dsn"]` (loopback only
    unless allowed) and hold them `hold_s`; return the ramp's outcome."""
    if on_staging(configuration):
        return start_cloud_run_flood(
            flood["connections"],
            image=staging_setting(configuration, "gcp_flood_image", "the flood job's image"),
            dsn_secret=staging_setting(
                configuration, "gcp_flood_dsn_secret", "the flood job's database URL"
            ),
            connector=staging_setting(configuration, "gcp_vpc_connector", "the flood's egress"),
            service_account=staging_setting(
                configuration, "gcp_flood_service_account", "the flood job's identity"
            ),
            hold_s=flood["hold_s"],
            ramp_s=flood["ramp_s"],
            connect_timeout_s=flood["connect_timeout_s"],
            concurrency=flood["concurrency"],
            job=_cloud_run_job(name),
            configuration=configuration,
            secrets=secrets,
        )
    check_load_target(flood["target_dsn"], allowed_targets)
    ramped = start_pressure(
        KIND,
        name,
        "chaoskit.targets.flood.worker",
        flood,
        "ramped",
        flood["ramp_s"] + flood["connect_timeout_s"] * 2 + 30,
    )
    return {"hold_s": flood["hold_s"], **ramped}


def stop_flood(name: str, configuration: Configuration | None) -> dict[str, Any]:
    """Release every connection of the flood `name`; idempotent."""
    if on_staging(configuration):
        return stop_cloud_run_flood(_cloud_run_job(name))
    return stop_pressure(KIND, name)
