"""The connector's control API, from the other side: every reader and writer of the
connector (activities, the testbed, the preflight, the timeline) goes through here."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaoskit.kit.errors import KitError

__all__ = ["ConnectorClient", "ConnectorUnreachable"]

_TIMEOUT_S = 10.0


def _labels(labels: dict[str, str]) -> str:
    inside = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{{{inside}}}" if inside else ""


class ConnectorUnreachable(KitError):
    """The control API does not answer."""


class ConnectorClient:
    """Calls to one connector's control API (`GET /state`, `PUT /config`, `POST /reset`,
    `GET /events`, `GET /metrics`); every failure is a one-line KitError."""

    def __init__(self, url: str, timeout_s: float = _TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = httpx.request(method, f"{self.url}{path}", json=body, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise ConnectorUnreachable(
                f"the connector's control API at {self.url} is unreachable "
                f"({type(error).__name__}): is the testbed up? (chaos testbed status)"
            ) from None
        if response.status_code == 400:
            raise KitError(f"the connector refused the change: {response.json()['error']}")
        if response.status_code >= 400:
            raise KitError(f"the connector answered {response.status_code} to {method} {path}")
        return response

    def state(self) -> dict[str, Any]:
        """Instances, capacity, active and waiting connections, utilisation, counts, config."""
        return self._call("GET", "/state").json()

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes`; return the whole configuration afterwards."""
        return self._call("PUT", "/config", changes).json()

    def reset(self) -> dict[str, Any]:
        """Back to the configuration the connector started with; return it."""
        return self._call("POST", "/reset").json()

    def metrics(self) -> dict[str, float]:
        """The Prometheus scrape (`GET /metrics`) as `{sample name: value}`, labels
        folded into the name (`vpc_connector_connections_total{outcome="admitted"}`)."""
        text = self._call("GET", "/metrics").text
        return {
            sample.name + _labels(sample.labels): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def events(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Events at or after `since` (epoch seconds), oldest first."""
        return self._call("GET", f"/events?since={since}").json()
