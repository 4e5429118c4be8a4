"""The connector's, Cloud SQL's and Cloud Run's load from Cloud Monitoring, as probes (see
`chaoskit.targets.gcp.monitoring`)."""

from __future__ import annotations

from chaoskit.targets.gcp.monitoring import (
    cloud_run_instances,
    cloud_sql_backends,
    cloud_sql_cpu,
    connector_metrics,
)

__all__ = ["cloud_run_instances", "cloud_sql_backends", "cloud_sql_cpu", "connector_metrics"]
