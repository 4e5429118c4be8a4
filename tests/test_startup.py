"""The reference service's 7-phase startup against a real PostgreSQL, through real uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.service import start_service_instance, stop_service_instance
from chaoskit.testbed.instances import launch_service, service_settings
from chaoskit.testbed.postgres import PostgresEndpoint
from tests.conftest import running_postgres, service_configuration

FAST = {"initialization_timeout_s": 2.0, "connect_timeout_s": 1.0, "connect_retry_s": 0.1}


@pytest.fixture(scope="module")
def scarce_postgres(kit_dirs: Callable[[str], Path]) -> Iterator[PostgresEndpoint]:
    """max_connections=5: with 3 slots reserved for superusers, the app gets 2."""
    yield from running_postgres(kit_dirs("scarce"), max_connections=5)


def statuses(report: dict) -> list[str]:
    return [p["status"] for p in report["phases"]]


def test_healthy_start_when_capacity_suffices(postgres: PostgresEndpoint, tmp_path: Path) -> None:
    settings = service_settings("healthy", postgres.app_dsn, pool_size=3, **FAST)
    instance = launch_service("healthy", settings, tmp_path)
    try:
        report = instance.observe_startup(timeout_s=20)
        assert report["ready"] is True
        assert report["exit_code"] is None
        assert statuses(report) == ["succeeded"] * 7
        assert [p["name"] for p in report["phases"]] == [
            "init",
            "dependencies",
            "database",
            "cache",
            "services",
            "websocket",
            "finalize",
        ]
        startup = httpx.get(f"{instance.url}/health/startup").json()
        assert startup["status"] == "ready"
        assert httpx.get(f"{instance.url}/api/ping").json()["pong"] is True
    finally:
        instance.stop()


def test_phase3_times_out_under_too_small_max_connections(
    scarce_postgres: PostgresEndpoint, tmp_path: Path
) -> None:
    settings = service_settings("starved", scarce_postgres.app_dsn, pool_size=4, **FAST)
    instance = launch_service("starved", settings, tmp_path)
    try:
        report = instance.observe_startup(timeout_s=20)
    finally:
        instance.stop()
    assert report["ready"] is False
    assert report["exit_code"] == 3  # uvicorn's STARTUP_FAILURE, not ours
    assert statuses(report) == ["succeeded", "succeeded", "timeout"] + ["blocked"] * 4
    phase3 = report["failed_phase"]
    assert phase3["name"] == "database"
    assert phase3["cause"] == "too_many_connections"
    assert phase3["elapsed_s"] == pytest.approx(2.0, abs=0.5)
    assert "Application startup failed" in instance.log_path.read_text()


def test_same_pool_starts_when_the_database_has_room(
    scarce_postgres: PostgresEndpoint, tmp_path: Path
) -> None:
    settings = service_settings("fits", scarce_postgres.app_dsn, pool_size=2, **FAST)
    instance = launch_service("fits", settings, tmp_path)
    try:
        assert instance.observe_startup(timeout_s=20)["ready"] is True
    finally:
        instance.stop()


@pytest.mark.parametrize(
    ("dsn_change", "cause"),
    [
        (lambda dsn: dsn.replace("app:", "app:wrong", 1), "auth_failed"),
        (lambda dsn: dsn.replace("127.0.0.1", "no-such-host.invalid"), "unknown_host"),
    ],
    ids=["wrong-password", "unknown-host"],
)
def test_phase3_fails_fast_on_errors_it_cannot_recover_from(
    postgres: PostgresEndpoint, tmp_path: Path, dsn_change, cause: str
) -> None:
    settings = service_settings("broken", dsn_change(postgres.app_dsn), pool_size=2, **FAST)
    # the unknown host is allowed on purpose: the guardrails refuse what cannot resolve
    instance = launch_service(
        "broken", settings, tmp_path, allowed_targets=("no-such-host.invalid",)
    )
    report = instance.observe_startup(timeout_s=20)
    assert report["exit_code"] == 3
    assert statuses(report) == ["succeeded", "succeeded", "failed"] + ["blocked"] * 4
    assert report["failed_phase"]["cause"] == cause
    assert report["failed_phase"]["elapsed_s"] < 2.0  # failed, not waited out


def test_invalid_setting_is_one_clear_line_and_exit_2(postgres: PostgresEndpoint) -> None:
    env = {**os.environ, "SERVICE_DATABASE_URL": postgres.app_dsn, "SERVICE_POOL_SIZE": "-1"}
    result = subprocess.run(
        [sys.executable, "-m", "chaoskit.testbed.service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: SERVICE_POOL_SIZE='-1' must be >= 1")


def test_service_instance_activity_round_trip(postgres: PostgresEndpoint) -> None:
    from chaoskit.probes.service import observe_startup

    configuration = service_configuration(postgres.app_dsn, pool_size=2, **FAST)
    started = start_service_instance("candidate", configuration=configuration)
    assert "***" in started["database"] and postgres.app_dsn not in str(started)
    assert observe_startup("candidate", timeout_s=20)["ready"] is True
    stopped = stop_service_instance("candidate")
    assert stopped["running"] is True
    assert stop_service_instance("candidate") == {"instance": "candidate", "running": False}
    with pytest.raises(ActivityFailed, match="no service instance named 'candidate'"):
        observe_startup("candidate", timeout_s=1)
