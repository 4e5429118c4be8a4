"""The connection flood at staging scale, as activities: a Cloud Run Job of parallel
tasks inside the VPC (see `chaoskit.targets.flood.cloud_run_job`)."""

from __future__ import annotations

from chaoskit.targets.flood.cloud_run_job import start_cloud_run_flood, stop_cloud_run_flood

__all__ = ["start_cloud_run_flood", "stop_cloud_run_flood"]
