"""The timeline sampler: connector and database load, sampled through a run.

A daemon thread samples every `interval_s` while the run goes on: the connector's
utilisation, active and waiting connections and instances (when `connector_url` is
configured), and the database's connections in use, by the flood and by the kit (when
`admin_database_url` is). On staging it reads Cloud Monitoring instead (the connector's
CPU utilisation and instances, Cloud SQL's backends), every `gcp_timeline_interval_s`
(default 30: Monitoring's points are a minute apart). The report draws the timeline
from these samples.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskit.actions.target import on_staging
from chaoskit.probes.connector import connector_state
from chaoskit.probes.database import pool_utilisation
from chaoskit.probes.gcp.monitoring import cloud_sql_backends, connector_metrics

__all__ = ["TimelineSampler"]

_MAX_SAMPLES = 7200
_STAGING_INTERVAL_S = 30.0


class TimelineSampler:
    def __init__(self, configuration: Configuration, interval_s: float) -> None:
        self.configuration = dict(configuration or {})
        self.staging = on_staging(self.configuration)
        if self.staging:
            staging_interval_s = self.configuration.get("gcp_timeline_interval_s")
            interval_s = float(staging_interval_s or _STAGING_INTERVAL_S)
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kit-timeline")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < _MAX_SAMPLES:
            self.samples.append(self.sample())
            self._stop.wait(self.interval_s)

    def sample(self) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "elapsed_s": round(time.monotonic() - self._started, 3),
        }
        if self.staging:
            return {**sample, **self._staging_sample()}
        if self.configuration.get("connector_url"):
            try:
                state = connector_state(configuration=self.configuration)
                sample.update(
                    connector_utilisation=state["utilisation"],
                    connector_active=state["active"],
                    connector_waiting=state["waiting"],
                    connector_instances=state["instances"],
                )
            except ActivityFailed:
                sample["connector_error"] = True
        if self.configuration.get("admin_database_url"):
            try:
                used = pool_utilisation("chaos-flood-", configuration=self.configuration)
                sample.update(
                    database_in_use=used["in_use"],
                    database_utilisation=used["utilisation"],
                    flood_connections=used["matching"],
                )
            except ActivityFailed:
                sample["database_error"] = True
        return sample

    def _staging_sample(self) -> dict[str, Any]:
        """The connector and Cloud SQL, as Cloud Monitoring last saw them; a key is left
        out while Monitoring has no point for it."""
        configuration = self.configuration
        values: dict[str, Any] = {}
        connector = configuration.get("gcp_vpc_connector")
        instance = configuration.get("gcp_cloud_sql_instance")
        max_connections = configuration.get("gcp_cloud_sql_max_connections")
        try:
            if connector:
                metrics = connector_metrics(connector, configuration=configuration)
                values.update(
                    connector_utilisation=metrics["utilisation"],
                    connector_instances=metrics["instances"],
                )
            if instance and max_connections:
                backends = cloud_sql_backends(
                    instance, int(max_connections), configuration=configuration
                )
                values.update(
                    database_in_use=backends["backends"],
                    database_utilisation=backends["utilisation"],
                )
        except ActivityFailed:
            values["monitoring_error"] = True
        return {key: value for key, value in values.items() if value is not None}
