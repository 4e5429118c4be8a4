"""Prometheus metrics of the connector, read from its state at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from chaoskit.testbed.connector.proxy import ConnectorProxy

__all__ = ["metrics_registry"]


class _ConnectorCollector(Collector):
    def __init__(self, proxy: ConnectorProxy) -> None:
        self.proxy = proxy

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self.proxy.snapshot()
        for name, doc in (
            ("instances", "Connector instances running"),
            ("capacity", "Concurrent connections the instances carry"),
            ("active", "Connections passing through"),
            ("waiting", "Connections waiting for a slot"),
            ("utilisation", "Active connections over capacity (0..1)"),
            ("demand", "Active and waiting connections over capacity"),
        ):
            yield GaugeMetricFamily(f"vpc_connector_{name}", doc, value=state[name])
        throughput = GaugeMetricFamily(
            "vpc_connector_throughput_limit_mbps", "Byte-rate limit per direction (0: none)"
        )
        throughput.add_metric([], state["throughput_mbps"] or 0)
        yield throughput
        connections = CounterMetricFamily(
            "vpc_connector_connections", "Connections by outcome", labels=["outcome"]
        )
        for outcome, count in state["counts"].items():
            connections.add_metric([outcome], count)
        yield connections
        transferred = CounterMetricFamily(
            "vpc_connector_bytes", "Bytes forwarded by direction", labels=["direction"]
        )
        for direction, count in state["bytes_total"].items():
            transferred.add_metric([direction], count)
        yield transferred


def metrics_registry(proxy: ConnectorProxy) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ConnectorCollector(proxy))
    return registry
