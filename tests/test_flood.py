"""The connection flood against a real PostgreSQL: opens exactly N, releases all, always."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import asyncpg
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.flood import start_connection_flood, stop_connection_flood
from chaoskit.kit import registry
from chaoskit.targets.database import database_sessions
from chaoskit.targets.flood.dispatch import FLOOD_PREFIX
from chaoskit.targets.flood.worker import ConnectionFlood
from chaoskit.testbed.postgres import PostgresEndpoint
from tests.conftest import REPO, eventually, gone, sessions


def test_flood_opens_exactly_n_and_releases_all(postgres: PostgresEndpoint) -> None:
    ramped = start_connection_flood(25, postgres.app_dsn, hold_s=60)
    app = ramped["application_name"]
    assert app.startswith(FLOOD_PREFIX)
    assert (ramped["attempted"], ramped["established"], ramped["failed"]) == (25, 25, {})
    assert ramped["connect_latency"]["p50_s"] > 0
    assert sessions(postgres.admin_dsn, app) == 25

    stopped = stop_connection_flood()
    assert stopped["released"] == 25
    assert stopped["reason"] == "stopped"
    assert stopped["terminated_server_side"] == 0
    assert eventually(lambda: sessions(postgres.admin_dsn, app) == 0, timeout_s=5)


@pytest.mark.parametrize("ramp_s", [0.0, 0.5], ids=["burst", "ramp"])
def test_a_flood_fills_the_room_it_finds_and_counts_the_rest_by_cause(
    postgres: PostgresEndpoint, ramp_s: float
) -> None:
    # the room an application may take, from the live database: what the sessions
    # already there (this test's watcher among them) leave of it
    found = database_sessions(postgres.admin_dsn)
    room = found["max_connections"] - found["reserved"] - found["in_use"]
    ramped = start_connection_flood(room + 13, postgres.app_dsn, ramp_s=ramp_s, hold_s=60)
    try:
        assert ramped["established"] == room
        assert ramped["failed"] == {"too_many_connections": 13}
        assert ramped["room_full"] is True and ramped["room"]["left"] == 0
        assert ramped["room"]["max_connections"] == found["max_connections"]
    finally:
        stop_connection_flood()
    assert sessions(postgres.admin_dsn, FLOOD_PREFIX) == 0


def test_a_flood_that_fits_says_the_room_it_leaves(postgres: PostgresEndpoint) -> None:
    found = database_sessions(postgres.admin_dsn)
    room = found["max_connections"] - found["reserved"] - found["in_use"]
    ramped = start_connection_flood(room - 4, postgres.app_dsn, hold_s=60)
    try:
        assert (ramped["established"], ramped["failed"], ramped["retried"]) == (room - 4, {}, 0)
        assert ramped["room_full"] is False and ramped["room"]["left"] == 4
    finally:
        stop_connection_flood()


def test_connects_refused_in_the_burst_are_retried_once_the_room_frees(
    postgres: PostgresEndpoint,
) -> None:
    """Other clients hold slots through the burst and let them go before it settles (as
    backends still authenticating or exiting do): the flood takes them, and stops at the
    first refusal once the database is really full."""

    found = database_sessions(postgres.admin_dsn)
    room = found["max_connections"] - found["reserved"] - found["in_use"]

    async def scenario() -> None:
        others = [await asyncpg.connect(postgres.app_dsn) for _ in range(5)]
        flood = ConnectionFlood(
            {
                "target_dsn": postgres.app_dsn,
                "connections": room + 3,
                "ramp_s": 0.0,
                "connect_timeout_s": 5.0,
                "concurrency": 64,
                "application_name": f"{FLOOD_PREFIX}refill-test",
            }
        )
        try:
            await flood.burst()
            assert (len(flood.connections), flood.failures) == (
                room - 5,
                {"too_many_connections": 8},
            )
            for conn in others:
                await conn.close()
            await flood.fill_room()
            assert len(flood.connections) == room
            assert (flood.failures, flood.retried, flood.room_full) == (
                {"too_many_connections": 3},
                6,
                True,
            )
        finally:
            await flood.release()

    asyncio.run(scenario())
    assert sessions(postgres.admin_dsn, FLOOD_PREFIX) == 0


def test_stop_is_idempotent(postgres: PostgresEndpoint) -> None:
    assert stop_connection_flood() == {"name": "flood", "running": False}
    start_connection_flood(3, postgres.app_dsn)
    assert stop_connection_flood()["running"] is True
    assert stop_connection_flood() == {"name": "flood", "running": False}


def test_flood_releases_by_itself_when_hold_elapses(postgres: PostgresEndpoint) -> None:
    ramped = start_connection_flood(5, postgres.app_dsn, hold_s=0.5)
    assert eventually(lambda: sessions(postgres.admin_dsn, ramped["application_name"]) == 0)
    stopped = stop_connection_flood()
    assert stopped["reason"] == "hold_elapsed"
    assert stopped["exit_code"] == 0


_PARENT = """
import json, sys, time
from chaoskit.actions.flood import start_connection_flood
ramped = start_connection_flood(20, sys.argv[1], hold_s=300)
print(json.dumps(ramped), flush=True)
time.sleep(300)
"""


def test_flood_released_within_seconds_when_its_parent_is_killed(
    postgres: PostgresEndpoint,
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, postgres.app_dsn],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ,
    )
    try:
        ramped = json.loads(parent.stdout.readline())
        app = ramped["application_name"]
        assert sessions(postgres.admin_dsn, app) == 20
        worker_pid = int(
            subprocess.run(["pgrep", "-f", app], capture_output=True, text=True).stdout.split()[0]
        )
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert eventually(lambda: sessions(postgres.admin_dsn, app) == 0, timeout_s=5)
    assert eventually(lambda: gone(worker_pid), timeout_s=5)


@pytest.mark.parametrize(
    ("connections", "target", "message"),
    [
        (1001, None, r"^connections=1001 is out of range: .* cap of 1000"),
        (0, None, r"^connections=0 is out of range"),
        (
            5,
            "postgresql://app:pw@10.1.2.3:5432/app",
            r"^target_dsn host '10.1.2.3' is not loopback",
        ),
        (
            5,
            "postgresql://app:pw@no-such-host.invalid/app",
            r"host 'no-such-host.invalid' cannot be",
        ),
        (5, "mysql://127.0.0.1/app", r"is not a PostgreSQL target"),
        (5, "postgresql+asyncpg://app:pw@db.invalid/app", r"host 'db.invalid' cannot be"),
        (5, "postgresql://app:pw@127.0.0.1:5432/app?host=db.invalid", r"'db.invalid'"),
        (5, "host=db.invalid port=5432 password=pw dbname=app", r"'db.invalid'"),
        (5, "postgresql://app:pw@127.0.0.1:5432,db.invalid:5432/app", r"'db.invalid'"),
    ],
    ids=[
        "above-cap",
        "zero",
        "not-loopback",
        "unknown-host",
        "not-postgres",
        "driver-scheme",
        "host-parameter",
        "keyword-dsn",
        "several-hosts",
    ],
)
def test_bad_flood_arguments_are_refused_before_anything_opens(
    postgres: PostgresEndpoint, connections: int, target: str | None, message: str
) -> None:
    with pytest.raises(ActivityFailed, match=message) as refused:
        start_connection_flood(connections, target or postgres.app_dsn)
    assert "\n" not in str(refused.value)
    assert "pw" not in str(refused.value)  # the password never reaches the message
    assert registry.running() == []
    assert sessions(postgres.admin_dsn, FLOOD_PREFIX) == 0
