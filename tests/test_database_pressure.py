"""Cloud SQL pressure activities against a real PostgreSQL: each scenario fails under
pressure and starts cleanly without it, and nothing of the kit's is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.database import (
    restore_max_connections,
    run_acquisition_storm,
    set_max_connections,
    start_cpu_pressure,
    start_lock_pressure,
    stop_cpu_pressure,
    stop_lock_pressure,
)
from chaoskit.actions.flood import start_connection_flood, stop_connection_flood
from chaoskit.kit import registry
from chaoskit.probes.database import connection_time, pool_utilisation, server_pressure
from chaoskit.probes.service import repeated_cold_starts
from chaoskit.testbed.instances import launch_service, service_settings
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.postgres import PostgresEndpoint
from tests.conftest import eventually, running_postgres, service_configuration, sessions

FAST = {"initialization_timeout_s": 2.0, "connect_timeout_s": 1.0, "connect_retry_s": 0.1}


@pytest.fixture(scope="module")
def small_postgres(kit_dirs: Callable[[str], Path]) -> Iterator[PostgresEndpoint]:
    """max_connections=20: 17 for the application."""
    yield from running_postgres(kit_dirs("small"), max_connections=20)


def config(endpoint: PostgresEndpoint) -> dict[str, str]:
    return {"direct_database_url": endpoint.app_dsn, "admin_database_url": endpoint.admin_dsn}


# --- the acquisition storm -------------------------------------------------------------


def test_shared_pool_is_exhausted_at_pool_size_plus_overflow(postgres: PostgresEndpoint) -> None:
    storm = run_acquisition_storm(
        35,
        pool_size=10,
        max_overflow=15,
        pool_timeout_s=0.5,
        connect_timeout_s=1.0,
        shared_pool=True,
        configuration=config(postgres),
    )
    assert (storm["succeeded"], storm["failed"]) == (25, {"pool_timeout": 10})
    assert storm["pool_peak_checked_out"] == 25
    assert storm["pool_peak_utilisation"] == 1.0
    assert storm["acquisition_s"].count(None) == 10
    assert storm["exceeded_share"] == round(10 / 35, 4)


def test_shared_pool_with_room_serves_every_startup(postgres: PostgresEndpoint) -> None:
    storm = run_acquisition_storm(
        20,
        pool_size=10,
        max_overflow=15,
        pool_timeout_s=0.5,
        connect_timeout_s=1.0,
        shared_pool=True,
        configuration=config(postgres),
    )
    assert (storm["succeeded"], storm["failed"], storm["exceeded_timeout"]) == (20, {}, 0)


def test_concurrent_startups_beyond_the_database_exceed_the_timeout(
    small_postgres: PostgresEndpoint,
) -> None:
    # 6 startups x 5 connections = 30 > 17: at most 3 pools fill
    storm = run_acquisition_storm(
        6,
        pool_size=5,
        max_overflow=0,
        connect_timeout_s=0.5,
        deadline_s=1.0,
        connect_retry_s=0.1,
        configuration=config(small_postgres),
    )
    assert storm["mode"] == "separate_pools"
    # which startups win the race varies (all may lose, each holding part of a pool);
    # how many can win does not
    assert storm["succeeded"] <= 3
    assert storm["failed"] == {"too_many_connections": 6 - storm["succeeded"]}
    assert storm["exceeded_share"] >= 0.5


def test_concurrent_startups_that_fit_all_start(small_postgres: PostgresEndpoint) -> None:
    storm = run_acquisition_storm(
        3, pool_size=5, max_overflow=0, connect_timeout_s=1.0, configuration=config(small_postgres)
    )
    assert (storm["succeeded"], storm["failed"], storm["exceeded_timeout"]) == (3, {}, 0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"startups": 0}, r"^startups=0 is out of range"),
        ({"startups": 201}, r"^startups=201 is out of range: give a whole number from 1 to 200"),
        ({"startups": 5, "pool_size": -1}, r"^pool_size=-1 must be >= 1"),
        ({"startups": 5, "deadline_s": 99999}, r"^duration_s=99999 is out of range"),
        (
            {"startups": 5, "database_url": "postgresql://app:pw@10.9.8.7/app"},
            r"^database_url host '10.9.8.7' is not loopback",
        ),
    ],
)
def test_bad_storm_arguments_are_refused(
    postgres: PostgresEndpoint, arguments: dict, message: str
) -> None:
    with pytest.raises(ActivityFailed, match=message):
        run_acquisition_storm(configuration=config(postgres), **arguments)


# --- CPU and lock pressure -------------------------------------------------------------


def test_cpu_pressure_holds_busy_sessions_then_releases(postgres: PostgresEndpoint) -> None:
    started = start_cpu_pressure(3, duration_s=30, configuration=config(postgres))
    assert sessions(postgres.admin_dsn, started["application_name"]) == 3
    busy = server_pressure(configuration=config(postgres))
    assert busy["active_backends"] >= 3
    stopped = stop_cpu_pressure()
    assert (stopped["released"], stopped["reason"]) == (3, "stopped")
    assert eventually(lambda: sessions(postgres.admin_dsn, started["application_name"]) == 0)
    assert stop_cpu_pressure() == {"name": "cpu", "running": False}


def test_lock_pressure_times_phase3_out_and_its_release_lets_it_start(
    postgres: PostgresEndpoint, tmp_path: Path
) -> None:
    settings = service_settings("locked", postgres.app_dsn, pool_size=2, **FAST)
    start_lock_pressure(duration_s=30, configuration=config(postgres))
    try:
        instance = launch_service("locked", settings, tmp_path)
        report = instance.observe_startup(timeout_s=20)
        assert report["exit_code"] == 3
        assert report["failed_phase"]["cause"] == "slow_schema_query"
    finally:
        stop_lock_pressure()
    instance = launch_service("unlocked", settings, tmp_path)
    try:
        assert instance.observe_startup(timeout_s=20)["ready"] is True
    finally:
        instance.stop()


def test_server_pressure_sees_a_session_waiting_on_the_lock(postgres: PostgresEndpoint) -> None:
    start_lock_pressure(duration_s=30, configuration=config(postgres))

    async def scenario() -> tuple[dict, int]:
        conn = await asyncpg.connect(postgres.app_dsn)
        try:
            waiting = asyncio.create_task(
                conn.fetchval("SELECT max(version) FROM schema_migrations")
            )
            # sample until the query is seen waiting, however slow the machine is today
            pressure = await asyncio.to_thread(server_pressure, 10.0, True, None, config(postgres))
            await asyncio.to_thread(stop_lock_pressure)
            return pressure, await waiting  # the lock is gone: the query completes
        finally:
            await conn.close()

    try:
        pressure, version = asyncio.run(scenario())
    finally:
        stop_lock_pressure()
    assert version == 1
    assert pressure["waiting_on_locks"] == 1
    assert pressure["longest_lock_wait_s"] > 0


def test_lock_pressure_ends_by_itself_at_its_time_limit(postgres: PostgresEndpoint) -> None:
    started = start_lock_pressure(duration_s=0.5, configuration=config(postgres))
    assert eventually(lambda: sessions(postgres.admin_dsn, started["application_name"]) == 0)
    assert stop_lock_pressure()["reason"] == "duration_elapsed"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"table": "no_such_table"}, r"^table='no_such_table' does not exist"),
        ({"table": "x; DROP TABLE y"}, r"^table='x; DROP TABLE y' is not a table name"),
        ({"mode": "NUCLEAR"}, r"^mode='NUCLEAR' is not a PostgreSQL lock mode"),
        ({"duration_s": 6000}, r"^duration_s=6000 is out of range: .* \(90 minutes"),
    ],
)
def test_bad_lock_arguments_are_refused_and_change_nothing(
    postgres: PostgresEndpoint, arguments: dict, message: str
) -> None:
    with pytest.raises(ActivityFailed, match=message):
        start_lock_pressure(configuration=config(postgres), **arguments)
    assert registry.running() == []


def test_bad_cpu_arguments_are_refused(postgres: PostgresEndpoint) -> None:
    with pytest.raises(ActivityFailed, match=r"^workers=-2 is out of range"):
        start_cpu_pressure(-2, 10, configuration=config(postgres))
    with pytest.raises(ActivityFailed, match=r"^duration_s=0 is out of range"):
        start_cpu_pressure(2, 0, configuration=config(postgres))
    assert registry.running() == []


# --- probes ------------------------------------------------------------------------------


def test_connection_time_and_pool_utilisation(postgres: PostgresEndpoint) -> None:
    timing = connection_time(5, database_url=postgres.app_dsn)
    assert (timing["connected"], timing["failed"]) == (5, {})
    assert 0 < timing["latency"]["p50_s"] <= timing["latency"]["max_s"]

    flood = start_connection_flood(12, postgres.app_dsn)
    try:
        used = pool_utilisation("chaos-flood-", configuration=config(postgres))
    finally:
        stop_connection_flood()
    assert used["max_connections"] == 60
    assert used["matching"] == 12
    assert used["by_application"][flood["application_name"]] == 12
    assert used["utilisation"] == round(used["in_use"] / 60, 4)


# --- exit code 3, consistently ------------------------------------------------------------


def test_repeated_cold_starts_exit_3_every_time_under_pressure(
    small_postgres: PostgresEndpoint,
) -> None:
    configuration = service_configuration(small_postgres.app_dsn, pool_size=2, **FAST)
    start_connection_flood(17, small_postgres.app_dsn)
    try:
        starts = repeated_cold_starts(3, configuration=configuration)
    finally:
        stop_connection_flood()
    assert starts["exit_codes"] == {"3": 3}
    assert starts["startup_failed"] == 3
    assert starts["failed_phases"] == {"3:timeout:too_many_connections": 3}
    clean = repeated_cold_starts(2, configuration=configuration)
    assert clean["ready"] == 2 and clean["startup_failed"] == 0


# --- max_connections of the embedded PostgreSQL -----------------------------------------


def test_set_and_restore_max_connections_restart_the_embedded_postgres() -> None:
    with pytest.raises(ActivityFailed, match=r"^the embedded PostgreSQL is not running"):
        set_max_connections(50)
    admin_dsn = testbed_up()["postgres"]["admin_dsn"]

    async def setting() -> int:
        conn = await asyncpg.connect(admin_dsn)
        try:
            return int(await conn.fetchval("SHOW max_connections"))
        finally:
            await conn.close()

    try:
        assert set_max_connections(40) == {"max_connections": 40, "previous": 100}
        assert asyncio.run(setting()) == 40
        assert set_max_connections(30)["previous"] == 40
        assert restore_max_connections() == {"restored": True, "max_connections": 100}
        assert asyncio.run(setting()) == 100
        assert restore_max_connections() == {"restored": False, "max_connections": 100}
        with pytest.raises(ActivityFailed, match=r"^max_connections=2 is out of range"):
            set_max_connections(2)
    finally:
        testbed_down()
