"""Fixtures: a real embedded PostgreSQL per session, an isolated testbed home per test."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chaoskit.kit import registry
from chaoskit.kit.processes import pid_alive, stop_pid
from chaoskit.kit.settings import embedded_profile
from chaoskit.targets.database import OBSERVER_SESSIONS, DatabaseObserver, database_sessions
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.connector.launch import RunningConnector, launch_connector
from chaoskit.testbed.lifecycle import testbed_down, testbed_up
from chaoskit.testbed.postgres import EmbeddedPostgres, PostgresEndpoint
from chaoskit.testbed.service.database import ensure_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kit_dirs() -> Iterator[Callable[[str], Path]]:
    """Fresh folders for PostgreSQL data and testbed homes, outside pytest's own temporary
    tree: pytest resets that tree to owner-only access when a session starts, which
    would lock out the system user the embedded PostgreSQL runs as."""
    base = Path(tempfile.mkdtemp(prefix="startup-chaos-kit-tests-"))
    counter = itertools.count()

    def fresh(name: str) -> Path:
        folder = base / f"{next(counter):04d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:60]}"
        folder.mkdir()
        return folder

    yield fresh
    shutil.rmtree(base, ignore_errors=True)


def running_postgres(folder: Path, max_connections: int) -> Iterator[PostgresEndpoint]:
    """A real PostgreSQL with the service's schema, for a fixture to yield from."""
    server = EmbeddedPostgres(folder / "postgres")
    endpoint = server.start(max_connections=max_connections)
    asyncio.run(ensure_schema(endpoint.app_dsn))
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def postgres(kit_dirs: Callable[[str], Path]) -> Iterator[PostgresEndpoint]:
    """A real PostgreSQL with room for floods of a few dozen connections."""
    yield from running_postgres(kit_dirs("pg"), max_connections=60)


@pytest.fixture(autouse=True)
def no_leftover_sessions(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the shared PostgreSQL, no session of the kit's remains."""
    yield
    if "postgres" in request.fixturenames:
        admin = request.getfixturevalue("postgres").admin_dsn
        assert eventually(lambda: sessions(admin, "chaos-") == 0, timeout_s=5), (
            "the test left sessions named chaos-* in pg_stat_activity"
        )


@pytest.fixture(autouse=True)
def testbed_home(
    request: pytest.FixtureRequest,
    kit_dirs: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """Every test gets its own `.testbed` folder, and must leave nothing registered."""
    home = kit_dirs(request.node.name) / ".testbed"
    monkeypatch.setenv("TESTBED_HOME", str(home))
    yield home
    leftovers = registry.stop_all()
    assert not leftovers, f"perturbations left running by the test: {leftovers}"


_WATCHERS: dict[str, DatabaseObserver] = {}


@pytest.fixture(autouse=True)
def close_watchers() -> Iterator[None]:
    yield
    while _WATCHERS:
        _WATCHERS.popitem()[1].stop()


def sessions(admin_dsn: str, application_prefix: str) -> int:
    """How many server sessions carry an application_name starting with the prefix.

    Counted through one connection the test keeps (as the kit's own observer does): a
    test polling a full database must not take the reserved slots one by one."""
    if admin_dsn not in _WATCHERS:
        _WATCHERS[admin_dsn] = DatabaseObserver(admin_dsn, application="tests-watcher")

    async def count(conn: asyncpg.Connection) -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1",
            application_prefix + "%",
        )

    return _WATCHERS[admin_dsn].observe(count)


@contextlib.contextmanager
def testbed_home_for_module(home: Path) -> Iterator[None]:
    """TESTBED_HOME set to `home` for a module's kept testbed, and put back after."""
    previous = os.environ.get("TESTBED_HOME")
    os.environ["TESTBED_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TESTBED_HOME", None)
        else:
            os.environ["TESTBED_HOME"] = previous


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `check` until it is true or `timeout_s` passes; return its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def gone(pid: int) -> bool:
    return not pid_alive(pid)


@pytest.fixture
def connector(postgres: PostgresEndpoint, tmp_path: Path) -> Iterator[RunningConnector]:
    """A real connector process in front of the shared PostgreSQL, its autoscaler off."""
    running = launch_connector(postgres.app_dsn, {"autoscale": False}, tmp_path / "connector.log")
    running.wait_ready(15)
    yield running
    stop_pid(running.pid)
    assert eventually(lambda: gone(running.pid))
    assert "Task was destroyed" not in running.log_path.read_text()


def leftovers(home: Path) -> list[str]:
    """The live processes a run on the testbed home `home` started and left behind
    (flood and pressure workers, service instances), not the testbed's own, whatever
    else runs on the machine: they inherit the run's TESTBED_HOME."""
    marker = f"TESTBED_HOME={home}".encode()
    state_file = home / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else None
    testbed = {state[c]["pid"] for c in ("connector", "service") if c in state} if state else set()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in testbed | {os.getpid()}:
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in environ and "chaoskit" in command and pid_alive(int(proc.name)):
            found.append(command)
    return found


def service_configuration(database_url: str, **settings: object) -> dict:
    """A run's configuration for the reference service against `database_url`: the
    embedded profile's values, with `settings` over them."""
    return {**embedded_profile(), "database_url": database_url, **settings}


@dataclass
class Testbed:
    home: Path
    state: dict[str, Any]

    __test__ = False

    @property
    def admin_dsn(self) -> str:
        return self.state["postgres"]["admin_dsn"]

    def max_connections(self) -> int:
        return database_sessions(self.admin_dsn)["max_connections"]

    def database_room(self) -> int:
        """Connections an application may open during a run: max_connections less the
        slots only superusers may take, the sessions held at rest (the long-running
        service's pool), and the one the run's observer holds."""
        sessions = database_sessions(self.admin_dsn)
        return (
            sessions["max_connections"]
            - sessions["reserved"]
            - sessions["in_use"]
            - OBSERVER_SESSIONS
        )

    def connector(self) -> dict[str, Any]:
        return ConnectorClient(self.state["connector"]["url"]).state()


@contextlib.contextmanager
def kept_testbed(home: Path) -> Iterator[Testbed]:
    """One testbed for every run of a module, as `chaos testbed up` keeps one."""
    with testbed_home_for_module(home):
        yield Testbed(home, testbed_up())
        testbed_down()
