"""A Cloud Run instance's startup read from Cloud Logging, as probes (see
`chaoskit.targets.gcp.logging`)."""

from __future__ import annotations

from chaoskit.targets.gcp.logging import observe_cloud_run_startup, wait_for_cloud_run_startup

__all__ = ["observe_cloud_run_startup", "wait_for_cloud_run_startup"]
