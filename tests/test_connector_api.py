"""The connector process, its control API, and the connector activities."""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
import httpx
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.connector import (
    restore_connector,
    scale_connector,
    set_connector_capacity,
    set_scaling_delay,
    throttle_connector_throughput,
)
from chaoskit.probes.connector import connector_events, connector_state, connector_utilisation
from chaoskit.targets.load import connector_load
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.connector.launch import RunningConnector
from chaoskit.testbed.postgres import PostgresEndpoint
from tests.conftest import REPO


def test_bad_config_is_a_400_naming_the_field_and_changes_nothing(
    connector: RunningConnector,
) -> None:
    before = httpx.get(f"{connector.api_url}/state").json()["config"]
    # one valid change and one invalid one: neither is applied
    response = httpx.put(f"{connector.api_url}/config", json={"instances": 3, "overflow": "drop"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "overflow: must be 'queue' or 'refuse'",
        "field": "overflow",
    }
    assert httpx.get(f"{connector.api_url}/state").json()["config"] == before
    assert httpx.put(f"{connector.api_url}/config", json=[1]).status_code == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"latency_s": 1e308}', "latency_s: 1e+308 is out of range: give 0 to 60"),
        ('{"rate_per_min": 1e-300}', "rate_per_min: 1e-300 is out of range: give 1 to 1e+07"),
        ('{"throughput_cap_mbps": 1e-300}', "throughput_cap_mbps: 1e-300 is out of range"),
        ('{"connections_per_instance": 1e18}', "connections_per_instance: 1000000000000000000"),
        ('{"latency_s": Infinity}', "latency_s: inf is out of range: give 0 to 60"),
    ],
)
def test_no_setting_can_wedge_the_connector(
    connector: RunningConnector, body: str, message: str
) -> None:
    before = httpx.get(f"{connector.api_url}/state").json()["config"]
    response = httpx.put(
        f"{connector.api_url}/config", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert httpx.get(f"{connector.api_url}/state").json()["config"] == before


async def _connect(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    await conn.close()


@pytest.mark.parametrize(
    "wedge",
    [{"latency_s": 60}, {"rate_per_min": 1}, {"throughput_cap_mbps": 0.01}],
    ids=["latency", "rate", "throughput"],
)
def test_a_reset_frees_connections_already_waiting(
    connector: RunningConnector, wedge: dict
) -> None:
    async def scenario() -> None:
        if "rate_per_min" in wedge:
            httpx.put(f"{connector.api_url}/config", json=wedge).raise_for_status()
            await _connect(connector.database_url)  # the minute's one connect
        else:
            httpx.put(f"{connector.api_url}/config", json=wedge).raise_for_status()
        waiting = asyncio.ensure_future(_connect(connector.database_url))
        # the connect is held back: by the minute's budget, the latency, or the bandwidth
        while not waiting.done():
            state = httpx.get(f"{connector.api_url}/state").json()
            if state["counts"]["accepted"] >= (2 if "rate_per_min" in wedge else 1):
                break
            await asyncio.sleep(0.05)
        assert not waiting.done()
        httpx.post(f"{connector.api_url}/reset").raise_for_status()
        await waiting  # within its 10 s connect timeout, not the wedge's minute

    asyncio.run(scenario())


def test_metrics_are_prometheus_text(connector: RunningConnector) -> None:
    response = httpx.get(f"{connector.api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "vpc_connector_instances 2.0" in response.text
    assert 'vpc_connector_connections_total{outcome="admitted"}' in response.text


def test_the_manual_names_every_metric_and_the_timeline_scrapes_them(
    connector: RunningConnector,
) -> None:
    scrape = ConnectorClient(connector.api_url).metrics()
    families = {name.split("{")[0] for name in scrape}
    manual = (REPO / "docs" / "connector-model.md").read_text()
    assert [f for f in sorted(families) if not re.search(f"`{f}[`{{]", manual)] == []
    # the load the timeline samples is the scrape's, not a second reading of /state
    state = httpx.get(f"{connector.api_url}/state").json()
    load = connector_load({"connector_url": connector.api_url})
    assert load == {
        "utilisation": scrape["vpc_connector_utilisation"],
        "instances": state["instances"],
        "active": state["active"],
        "waiting": state["waiting"],
    }


def test_actions_change_the_connector_and_restore_puts_back_what_was_found(
    connector: RunningConnector,
) -> None:
    config = {"connector_url": connector.api_url}
    found = connector_state(configuration=config)["config"]
    assert (
        set_connector_capacity(3, overflow="refuse", configuration=config)[
            "connections_per_instance"
        ]
        == 3
    )
    assert scale_connector(4, configuration=config)["instances"] == 4
    assert set_scaling_delay(45.0, cooldown_s=180.0, configuration=config)["cooldown_s"] == 180.0
    assert throttle_connector_throughput(8.0, configuration=config)["throughput_cap_mbps"] == 8.0
    assert connector_state(configuration=config)["throughput_mbps"] == 8.0

    restored = restore_connector(configuration=config)
    assert restored["restored"] is True
    assert restored["state"]["config"] == found
    again = restore_connector(configuration=config)  # idempotent
    assert again["restored"] is False
    assert again["state"]["config"] == found


def test_a_refused_change_is_one_clear_error_and_changes_nothing(
    connector: RunningConnector,
) -> None:
    config = {"connector_url": connector.api_url}
    found = connector_state(configuration=config)["config"]
    with pytest.raises(ActivityFailed) as refused:
        scale_connector(11, configuration=config)
    assert str(refused.value) == (
        "the connector refused the change: instances: must be between min_instances (2) "
        "and max_instances (10)"
    )
    assert connector_state(configuration=config)["config"] == found
    restore_connector(configuration=config)


def test_unreachable_connector_is_one_clear_error() -> None:
    with pytest.raises(
        ActivityFailed, match=r"^the connector's control API at http://127.0.0.1:1 "
    ):
        connector_state("http://127.0.0.1:1")
    with pytest.raises(ActivityFailed, match=r"^connector_url is not set"):
        connector_state()


def test_utilisation_and_events_follow_connections(
    connector: RunningConnector, postgres: PostgresEndpoint
) -> None:
    import asyncio

    started = time.time()
    url = connector.api_url
    set_connector_capacity(2, connector_url=url)  # capacity 4

    async def hold_two() -> float:
        conns = [await asyncpg.connect(connector.database_url) for _ in range(2)]
        try:
            return connector_utilisation(url)
        finally:
            for conn in conns:
                await conn.close()

    assert asyncio.run(hold_two()) == 0.5
    events = connector_events(since=started, connector_url=url)
    assert [e["type"] for e in events] == ["reconfigured"]
    assert connector_events(since=events[0]["at"], connector_url=url) == events
    with pytest.raises(ActivityFailed, match="since='yesterday' is not a timestamp"):
        connector_events(since="yesterday", connector_url=url)
    restore_connector(connector_url=url)


def test_reset_puts_back_the_starting_configuration(connector: RunningConnector) -> None:
    started = httpx.get(f"{connector.api_url}/state").json()["config"]
    assert httpx.put(f"{connector.api_url}/config", json={"instances": 5}).status_code == 200
    assert httpx.post(f"{connector.api_url}/reset").json() == started
    state = httpx.get(f"{connector.api_url}/state").json()
    assert state["config"] == started
    assert [e["type"] for e in state["recent_events"]][-2:] == ["reconfigured", "reset"]
