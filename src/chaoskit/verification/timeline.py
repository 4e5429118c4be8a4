"""The timeline sampler: connector and database load, sampled through a run.

A daemon thread samples every `interval_s` while the run goes on: the connector's
utilisation, active and waiting connections and instances (when `connector_url` is
configured), and the database's connections in use, by the flood and by the kit (when
`admin_database_url` is). On staging it reads Cloud Monitoring instead (the connector's
CPU utilisation and instances, Cloud SQL's backends), every `gcp.timeline_interval_s`
(default 30: Monitoring's points are a minute apart). The report draws the timeline
from these samples. A target that cannot be read is a mark in the sample; any other
failure ends the sampling and is handed to `on_failure` (the run stops: the kit fails
closed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.flood.dispatch import FLOOD_PREFIX
from chaoskit.targets.load import connector_load, database_load

__all__ = ["TimelineSampler"]

_MAX_SAMPLES = 7200


class TimelineSampler:
    def __init__(
        self,
        configuration: Configuration,
        interval_s: float,
        on_failure: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.on_failure = on_failure
        self.configuration = dict(configuration or {})
        settings = RunSettings.of(self.configuration)
        self.staging = settings.on_staging
        if self.staging:
            interval_s = settings.gcp.timeline_interval_s
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kit-timeline")

    def start(self) -> None:
        self._started = time.monotonic()  # the method's first sample is its zero
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        return self.samples

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and len(self.samples) < _MAX_SAMPLES:
                self.samples.append(self.sample())
                self._stop.wait(self.interval_s)
        except Exception as error:
            if self.on_failure is None:
                raise
            self.on_failure(error)

    def sample(self) -> dict[str, Any]:
        elapsed = 0.0 if not self.samples else time.monotonic() - self._started
        sample: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "elapsed_s": round(elapsed, 3),
        }
        try:
            connector = connector_load(self.configuration)
        except (KitError, ActivityFailed):
            sample["connector_error"] = True
        else:
            for key, value in (connector or {}).items():
                if value is not None:
                    sample[f"connector_{key}"] = value
        try:
            database = database_load(self.configuration, application_prefix=FLOOD_PREFIX)
        except (KitError, ActivityFailed):
            sample["database_error"] = True
        else:
            if database is not None:
                sample.update(
                    database_in_use=database["in_use"],
                    database_utilisation=database["utilisation"],
                )
                if "matching" in database:
                    sample["flood_connections"] = database["matching"]
        return sample
