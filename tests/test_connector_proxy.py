"""The connector model as a real TCP proxy between real clients and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from chaoskit.testbed.connector.config import ConnectorConfig
from chaoskit.testbed.postgres import PostgresEndpoint, postgres_tool
from tests.conftest import eventually
from tests.connector_harness import ProxyThread

NO_LIMITS = {"rate_per_min": None, "mbps_per_instance": None, "autoscale": False}


@pytest.fixture
def proxy_factory(postgres: PostgresEndpoint) -> Iterator:
    started: list[ProxyThread] = []

    def start(**settings: object) -> ProxyThread:
        proxy = ProxyThread(postgres, ConnectorConfig().updated({**NO_LIMITS, **settings}))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
        assert proxy.stray_tasks == [], "the proxy left tasks running after stop()"


async def _connect(dsn: str, timeout: float = 5.0) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=timeout)


def test_psql_and_asyncpg_pass_through_unchanged(proxy_factory) -> None:
    proxy = proxy_factory()
    psql = subprocess.run(
        [str(postgres_tool("psql")), proxy.app_dsn, "-Atc", "SELECT current_user, 6 * 7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "app|42"

    async def round_trips() -> tuple[int, int]:
        conn = await _connect(proxy.app_dsn)
        try:
            rows = await conn.fetch("SELECT g FROM generate_series(1, 50000) g")
            big = await conn.fetchval("SELECT length(repeat('x', 5000000))")
            return len(rows), big
        finally:
            await conn.close()

    assert asyncio.run(round_trips()) == (50000, 5_000_000)
    assert eventually(lambda: proxy.state()["active"] == 0)


def test_connection_above_capacity_waits_for_a_slot(proxy_factory) -> None:
    proxy = proxy_factory(connections_per_instance=2, overflow="queue", queue_timeout_s=30)

    async def scenario() -> None:
        held = [await _connect(proxy.app_dsn) for _ in range(4)]  # 2 instances x 2
        waiting = asyncio.ensure_future(_connect(proxy.app_dsn, timeout=20))
        assert await asyncio.to_thread(eventually, lambda: proxy.state()["waiting"] == 1)
        assert not waiting.done()
        await held.pop().close()  # a slot frees: the waiting connection gets it
        held.append(await waiting)
        assert await held[-1].fetchval("SELECT 1") == 1
        for conn in held:
            await conn.close()

    asyncio.run(scenario())
    state = proxy.state()
    assert state["counts"]["admitted"] == 5
    assert state["counts"]["refused"] == 0


def test_waiting_connection_is_closed_after_the_queue_timeout(proxy_factory) -> None:
    proxy = proxy_factory(connections_per_instance=1, overflow="queue", queue_timeout_s=0.3)

    async def scenario() -> str:
        held = [await _connect(proxy.app_dsn) for _ in range(2)]
        try:
            await _connect(proxy.app_dsn, timeout=10)
        except Exception as error:  # noqa: BLE001 - the kind of failure is the point
            return type(error).__name__
        finally:
            for conn in held:
                await conn.close()
        return "connected"

    assert asyncio.run(scenario()) in ("ConnectionResetError", "ConnectionError")
    assert proxy.state()["counts"]["queue_timeout"] == 1


def test_connection_above_capacity_is_refused_at_once(proxy_factory) -> None:
    proxy = proxy_factory(connections_per_instance=1, overflow="refuse")

    async def scenario() -> BaseException | None:
        held = [await _connect(proxy.app_dsn) for _ in range(2)]
        try:
            await _connect(proxy.app_dsn, timeout=10)
        except Exception as error:  # noqa: BLE001 - the refusal is the point
            return error
        finally:
            for conn in held:
                await conn.close()
        return None

    assert asyncio.run(scenario()) is not None
    state = proxy.state()
    assert state["counts"]["refused"] == 1
    assert state["counts"]["admitted"] == 2


def test_rate_limit_holds_a_burst_to_the_configured_rate(proxy_factory) -> None:
    # 1200/min = 20/s: a burst of 20 goes through, the next 10 wait their turn
    proxy = proxy_factory(rate_per_min=1200)

    async def burst() -> list[float]:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def one() -> float:
            conn = await _connect(proxy.app_dsn, timeout=10)
            admitted = loop.time() - started
            await conn.close()
            return admitted

        return sorted(await asyncio.gather(*(one() for _ in range(30))))

    admitted = asyncio.run(burst())
    assert proxy.state()["counts"]["rate_delayed"] == 10
    # the last connect cannot have been admitted before its turn: 10 x 1/20 s after the burst
    assert admitted[-1] >= 0.5


def test_autoscaler_scales_out_once_through_the_proxy_and_never_in(proxy_factory) -> None:
    proxy = proxy_factory(
        connections_per_instance=2, autoscale=True, scaling_delay_s=0.3, cooldown_s=600
    )

    async def scenario() -> None:
        held = [await _connect(proxy.app_dsn) for _ in range(4)]  # demand 100 %
        assert await asyncio.to_thread(eventually, lambda: proxy.state()["instances"] == 3)
        await asyncio.sleep(1.0)  # three scaling delays: the cooldown forbids another
        assert proxy.state()["instances"] == 3
        for conn in held:
            await conn.close()

    asyncio.run(scenario())
    assert eventually(lambda: proxy.state()["active"] == 0)
    assert proxy.state()["instances"] == 3  # idle, and still not scaled in
    kinds = [e["type"] for e in proxy.call(proxy.proxy.events.recent)]
    assert kinds.count("scaled_out") == 1


def test_stop_closes_every_connection_and_leaves_no_task(proxy_factory) -> None:
    proxy = proxy_factory(connections_per_instance=1, overflow="queue", queue_timeout_s=30)

    async def cut(operation: Any) -> bool:
        try:
            await operation
        except Exception:  # noqa: BLE001 - any error: the connection was cut
            return True
        return False

    async def clients() -> list[bool]:
        held = [await _connect(proxy.app_dsn) for _ in range(2)]
        waiting = asyncio.ensure_future(_connect(proxy.app_dsn, timeout=20))
        await asyncio.to_thread(eventually, lambda: proxy.state()["waiting"] == 1)
        await asyncio.to_thread(proxy.stop)
        outcomes = [await cut(conn.fetchval("SELECT 1")) for conn in held]
        outcomes.append(await cut(waiting))
        for conn in held:
            conn.terminate()
        return outcomes

    assert asyncio.run(clients()) == [True, True, True]
    assert proxy.stray_tasks == []
