"""The connector's limits as pure logic, on a clock the test controls."""

from __future__ import annotations

import pytest

from chaoskit.testbed.connector.autoscaler import Autoscaler
from chaoskit.testbed.connector.config import ConfigError, ConnectorConfig
from chaoskit.testbed.connector.pacing import Throughput
from chaoskit.testbed.connector.rate import RateLimit


def test_rate_limit_lets_one_seconds_worth_through_then_spaces_connects() -> None:
    rate = RateLimit()
    delays = [rate.delay_s(100.0, rate_per_min=600) for _ in range(13)]
    assert delays[:10] == [0.0] * 10  # 600/min: a burst of 10
    assert delays[10:] == pytest.approx([0.1, 0.2, 0.3])  # then one every 0.1 s
    # later, the bucket has refilled
    assert rate.delay_s(110.0, rate_per_min=600) == 0.0


def test_no_rate_limit_never_delays() -> None:
    rate = RateLimit()
    assert {rate.delay_s(0.0, None) for _ in range(1000)} == {0.0}


def test_throughput_spaces_chunks_at_the_set_rate_in_each_direction() -> None:
    throughput = Throughput()
    # 8 Mbps = 1,000,000 bytes/s: each 250 kB chunk takes 0.25 s of the budget
    starts = [throughput.departure("downstream", 250_000, 0.0, 8.0) for _ in range(4)]
    assert starts == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert throughput.departure("upstream", 250_000, 0.0, 8.0) == 0.0  # its own budget
    assert throughput.departure("downstream", 10**9, 5.0, None) == 5.0  # no limit


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def __call__(self, kind: str, **details: object) -> None:
        self.events.append((kind, details))


def scaler() -> tuple[Autoscaler, Recorder]:
    recorder = Recorder()
    return Autoscaler(recorder), recorder


CONFIG = ConnectorConfig(scaling_delay_s=5.0, cooldown_s=20.0, scale_threshold=0.7)


def test_autoscaler_adds_exactly_one_instance_after_the_delay() -> None:
    autoscaler, recorder = scaler()
    assert autoscaler.tick(0.0, 0.9, CONFIG) == 2
    assert autoscaler.tick(4.99, 0.9, CONFIG) == 2
    assert autoscaler.tick(5.0, 0.9, CONFIG) == 3
    assert [kind for kind, _ in recorder.events] == ["scale_out_requested", "scaled_out"]
    assert recorder.events[1][1]["waited_s"] == 5.0


def test_autoscaler_makes_no_new_request_within_the_cooldown() -> None:
    autoscaler, recorder = scaler()
    autoscaler.tick(0.0, 0.9, CONFIG)
    config = ConnectorConfig(**{**CONFIG.to_dict(), "instances": autoscaler.tick(5.0, 0.9, CONFIG)})
    for now in (6.0, 10.0, 24.99):
        assert autoscaler.tick(now, 1.0, config) == 3
    assert [kind for kind, _ in recorder.events] == ["scale_out_requested", "scaled_out"]
    autoscaler.tick(25.0, 1.0, config)  # cooldown over: the next request
    assert recorder.events[-1][0] == "scale_out_requested"


def test_autoscaler_never_scales_in_and_cancels_when_demand_drops() -> None:
    autoscaler, recorder = scaler()
    config = ConnectorConfig(**{**CONFIG.to_dict(), "instances": 4})
    assert autoscaler.tick(0.0, 0.0, config) == 4  # idle: stays at 4
    autoscaler.tick(1.0, 0.9, config)
    assert autoscaler.tick(2.0, 0.1, config) == 4
    assert [kind for kind, _ in recorder.events] == ["scale_out_requested", "scale_out_cancelled"]


def test_autoscaler_stops_at_max_instances() -> None:
    autoscaler, recorder = scaler()
    config = ConnectorConfig(**{**CONFIG.to_dict(), "instances": 10})
    assert autoscaler.tick(0.0, 1.0, config) == 10
    assert autoscaler.tick(100.0, 1.0, config) == 10
    assert recorder.events == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"instances": 11}, "instances"),
        ({"instances": 1}, "instances"),
        ({"overflow": "drop"}, "overflow"),
        ({"connections_per_instance": 0}, "connections_per_instance"),
        ({"connections_per_instance": 2.5}, "connections_per_instance"),
        ({"rate_per_min": -1}, "rate_per_min"),
        ({"latency_s": "slow"}, "latency_s"),
        ({"autoscale": 1}, "autoscale"),
        ({"colour": "blue"}, "colour"),
        ({"latency_s": 1e308}, "latency_s"),
        ({"rate_per_min": 1e-300}, "rate_per_min"),
        ({"throughput_cap_mbps": 1e-300}, "throughput_cap_mbps"),
        ({"connections_per_instance": 10**18}, "connections_per_instance"),
        ({"queue_timeout_s": float("inf")}, "queue_timeout_s"),
        ({"scaling_delay_s": float("nan")}, "scaling_delay_s"),
    ],
)
def test_invalid_config_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ConnectorConfig().updated(changes)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_throughput_is_the_instances_share_or_the_throttle() -> None:
    assert ConnectorConfig().throughput_mbps == 200.0  # e2-micro: 2 x 100 Mbps
    assert ConnectorConfig(instances=10).throughput_mbps == 1000.0
    assert ConnectorConfig(throughput_cap_mbps=8.0).throughput_mbps == 8.0
    assert ConnectorConfig(mbps_per_instance=None).throughput_mbps is None
