"""Bring the embedded testbed up, report on it, take it down.

Up: a PostgreSQL (embedded, or the user's own through `TESTBED_DATABASE_URL`) and one
long-running instance of the system under test in front of it, as production has: the
reference service, or the configuration's `service`, configured as the run's fresh
instances are (the embedded profile's values, under the configuration's).
What runs is recorded in `.testbed/state.json`, so that `chaos testbed down`, from any
process, stops exactly that.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import classify_connect_error
from chaoskit.kit.health import service_health
from chaoskit.kit.processes import pid_alive, stop_pid
from chaoskit.kit.redaction import redact_dsn
from chaoskit.kit.settings import RunSettings
from chaoskit.testbed.connector.client import ConnectorClient
from chaoskit.testbed.connector.launch import ConnectorError, launch_connector
from chaoskit.testbed.instances import launch_instance
from chaoskit.testbed.postgres import EmbeddedPostgres, PostgresError
from chaoskit.testbed.state import read_state, remove_state, testbed_home, write_state
from chaoskit.testbed.system import check_startable, system_under_test

__all__ = [
    "CONNECTOR_SETTINGS",
    "DEFAULT_MAX_CONNECTIONS",
    "TestbedError",
    "is_up",
    "orphaned",
    "restart_postgres",
    "service_name",
    "testbed_down",
    "testbed_endpoints",
    "testbed_status",
    "testbed_up",
]

DEFAULT_MAX_CONNECTIONS = 100
_SERVICE_INSTANCE = "testbed"
# the connector on the embedded profile, on compressed time: the scaling delay and
# cooldown (staging: 30-60 s and 180 s), and a connection rate that lets as many
# connects through within one compressed connect timeout as 600/min does within 35 s
CONNECTOR_SETTINGS = {
    "connections_per_instance": 25,
    "rate_per_min": 6000.0,
    "queue_timeout_s": 5.0,
    "scaling_delay_s": 3.0,
    "cooldown_s": 10.0,
}
_SERVICE_START_TIMEOUT_S = 30.0
_REACHABLE_TIMEOUT_S = 5.0
_CONNECTOR_START_TIMEOUT_S = 15.0


class TestbedError(KitError):
    """The testbed could not be brought up or down; the message says why and what to do."""

    __test__ = False  # not a pytest test class, despite its name


def _postgres() -> EmbeddedPostgres:
    return EmbeddedPostgres(testbed_home() / "postgres")


def _running(state: dict[str, Any], component: str) -> bool:
    return component in state and pid_alive(state[component]["pid"])


def _postgres_running(state: dict[str, Any]) -> bool:
    pid = state["postgres"].get("pid")
    return pid is None or pid_alive(pid)  # no pid: the user's own server


def orphaned(state: dict[str, Any]) -> bool:
    """Started for a run (not by `chaos testbed up`) whose process is gone: killed before
    it could take its testbed down."""
    owner = state.get("owner_pid")
    return state.get("started_by") != "cli" and owner is not None and not pid_alive(owner)


def is_up(state: dict[str, Any] | None) -> bool:
    return (
        bool(state)
        and _running(state, "service")
        and _running(state, "connector")
        and _postgres_running(state)
    )


def testbed_up(
    max_connections: int | None = None,
    database_url: str | None = None,
    started_by: str = "cli",
    configuration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Start what is not running and return the state; an up testbed is left as it is,
    save that one whose owner run is gone (killed) passes to this caller, which stops it
    in its owner's place. The long-running system under test is the configuration's
    `service` (the reference service when empty), with the configuration's values (the
    embedded profile's where it has none). Asking an up testbed for another
    `max_connections` or another service is refused: it keeps its own; a service that
    cannot start (a bad description, a program not found) is refused before anything
    starts."""
    try:
        settings = RunSettings.of(configuration)
        service = settings.service or None
        check_startable(system_under_test(service), settings.values())
    except KitError as error:
        raise TestbedError(str(error)) from None
    state = read_state()
    if is_up(state):
        running = state["postgres"].get("baseline_max_connections")
        if max_connections is not None and running not in (None, max_connections):
            raise TestbedError(
                f"the testbed is up with max_connections={running}, not {max_connections}: "
                "take it down first (chaos testbed down), then bring it up again"
            )
        if _process_of(state["service"].get("system")) != _process_of(service):
            raise TestbedError(
                f"it is up with another service ({service_name(state['service'].get('system'))})"
                f" than this run's ({service_name(service)}): give the run the profile the "
                "testbed was brought up with (--var-file), or take the testbed down first "
                "(chaos testbed down)"
            )
        if orphaned(state):
            state.update(started_by=started_by, owner_pid=os.getpid())
            write_state(state)
        return state
    if state:
        testbed_down()
    database_url = database_url or os.environ.get("TESTBED_DATABASE_URL") or None
    if database_url:
        _check_reachable(database_url)
        postgres = {"pid": None, "app_dsn": database_url, "admin_dsn": database_url}
    else:
        server = _postgres()
        try:
            endpoint = server.start(max_connections=max_connections or DEFAULT_MAX_CONNECTIONS)
        except PostgresError as error:
            raise TestbedError(str(error)) from None
        postgres = {
            "pid": server.pid(),
            "port": server.port(),
            "max_connections": server.max_connections(),
            # what runs are reset to, whatever a run (or a killed one) changed
            "baseline_max_connections": server.max_connections(),
            "app_dsn": endpoint.app_dsn,
            "admin_dsn": endpoint.admin_dsn,
            "log": str(server.log_path),
        }
    # imported here: SQLAlchemy takes a third of a second, and every chaos command,
    # `chaos run` with a testbed already up included, imports this module
    from chaoskit.testbed.service.database import ensure_schema

    asyncio.run(ensure_schema(postgres["app_dsn"]))
    connector = launch_connector(
        postgres["app_dsn"], CONNECTOR_SETTINGS, testbed_home() / "connector.log"
    )
    state = {
        "started_at": datetime.now(UTC).isoformat(),
        "started_by": started_by,
        "owner_pid": os.getpid(),
        "postgres": postgres,
        "connector": {
            "pid": connector.pid,
            "url": connector.api_url,
            "database_url": connector.database_url,
            "log": str(connector.log_path),
        },
    }
    write_state(state)
    try:
        connector.wait_ready(_CONNECTOR_START_TIMEOUT_S)
    except ConnectorError as error:
        testbed_down()
        raise TestbedError(str(error)) from None
    try:
        _start_service(state, _service_settings(settings))
    except TestbedError:
        testbed_down()
        raise
    return state


def _service_settings(settings: RunSettings) -> dict[str, Any]:
    """What the long-running service is started with: the configuration's values, as for
    the run's fresh instances; no endpoint of a run."""
    values = settings.values()
    for key in ("database_url", "direct_database_url", "admin_database_url", "service_url"):
        values.pop(key, None)
    return values


def _pool_capacity(settings: RunSettings) -> int:
    """The most connections the service's pool may open, `pool_size + max_overflow`."""
    return settings.pool_size + settings.max_overflow


def _start_service(
    state: dict[str, Any], settings: dict[str, Any], port: int | None = None
) -> None:
    """Start the long-running service with `settings` (the configuration's values; on
    `port`, default a free one) and wait until it is ready (its pool held), as the state
    records; raise TestbedError, saying why, when it does not start."""
    configured = RunSettings.of(settings)
    system = system_under_test(configured.service or None)
    # the service reaches the database through the connector, as in production
    values = {
        **settings,
        "database_url": state["connector"]["database_url"],
        "direct_database_url": state["postgres"]["app_dsn"],
    }
    try:
        instance = launch_instance(
            _SERVICE_INSTANCE, system, values, testbed_home() / "instances", detach=True, port=port
        )
    except KitError as error:
        raise TestbedError(str(error)) from None
    state["service"] = {
        "pid": instance.process.pid,
        "url": instance.url,
        "log": str(instance.log_path),
        "system": configured.service or None,
        "settings": _json_safe(settings),
        "pool_capacity": _pool_capacity(configured),
        "health_path": system.ready.http or "/health",
    }
    write_state(state)
    startup = instance.observe_startup(_SERVICE_START_TIMEOUT_S)
    if not startup["ready"]:
        which = "the reference service" if system.reference else "the service"
        last = " | ".join(startup.get("last_lines", [])[-3:])
        raise TestbedError(
            f"{which} did not start: {startup['reason']}; its last lines: {last or '(none)'}; "
            f"see {instance.log_path}"
        )


def _json_safe(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that are plain values (the state file is JSON)."""
    return {
        k: v
        for k, v in settings.items()
        if isinstance(v, str | int | float | bool | dict | list | None)
    }


def service_name(service: Mapping[str, Any] | None) -> str:
    """The system under test as a person tells it: its command, or the reference service."""
    if not service:
        return "the reference service"
    command = service.get("command")
    return " ".join(map(str, command)) if isinstance(command, list) else "a service of yours"


def _process_of(service: Mapping[str, Any] | None) -> dict[str, Any]:
    """What makes the long-running service the process it is: how the kit reads its
    startup or what its failure looks like does not."""
    return {key: (service or {}).get(key) for key in ("command", "cwd", "env", "ready")}


def _check_reachable(database_url: str) -> None:
    async def connect() -> None:
        conn = await asyncpg.connect(database_url, timeout=_REACHABLE_TIMEOUT_S)
        await conn.close()

    try:
        asyncio.run(connect())
    except Exception as error:  # noqa: BLE001 - any failure: the user's URL is wrong
        raise TestbedError(
            f"--database-url / TESTBED_DATABASE_URL: cannot connect to "
            f"{redact_dsn(database_url)} ({classify_connect_error(error)}): check its host, "
            "port, database and credentials"
        ) from None


def restart_postgres(max_connections: int) -> dict[str, Any]:
    """Restart the embedded PostgreSQL with a new `max_connections`, and the long-running
    service after it, so that the testbed is as `testbed up` leaves it (the service's
    pool held again, not refilled one request at a time); return PostgreSQL's state."""
    state = read_state()
    server = _postgres()
    if not state or state["postgres"].get("pid") is None or server.pid() is None:
        raise TestbedError(
            "the embedded PostgreSQL is not running (a database of your own is not "
            "restarted by the kit): start it with chaos testbed up"
        )
    try:
        server.restart(max_connections)
    except PostgresError as error:
        raise TestbedError(str(error)) from None
    state["postgres"].update(pid=server.pid(), max_connections=server.max_connections())
    write_state(state)
    if _running(state, "service"):
        stop_pid(state["service"]["pid"])
        # on its port as before: a run's configuration already has the service's URL
        port = urlsplit(state["service"]["url"]).port
        _start_service(state, state["service"].get("settings") or {}, port)
    return state["postgres"]


def testbed_endpoints(state: dict[str, Any]) -> dict[str, Any]:
    """A running testbed's endpoints, by the configuration keys experiments use, and how
    the long-running service's sessions are told apart (for the pool stop condition)."""
    return {
        "database_url": state["connector"]["database_url"],  # as the service reaches it
        "direct_database_url": state["postgres"]["app_dsn"],
        "admin_database_url": state["postgres"]["admin_dsn"],
        "connector_url": state["connector"]["url"],
        "service_url": state["service"]["url"],
        "service_application_name": f"service-{_SERVICE_INSTANCE}",
        "service_pool_capacity": state["service"].get("pool_capacity"),
    }


def testbed_down() -> dict[str, Any]:
    """Stop everything the state file records and forget it; safe to call when down."""
    state = read_state()
    if not state:
        return {"stopped": []}
    stopped = []
    for component in ("service", "connector"):
        if _running(state, component):
            stop_pid(state[component]["pid"])
            stopped.append(component)
    if state["postgres"].get("pid") is not None:
        server = _postgres()
        if server.pid() is not None:
            try:
                server.stop()
            except PostgresError as error:
                raise TestbedError(f"{error}; stop it with: kill {server.pid()}") from None
            stopped.append("postgres")
    remove_state()
    return {"stopped": stopped}


def _health(url: str, path: str) -> str:
    health = service_health(url, path, timeout_s=2.0)
    if health["status_code"] is None:
        return f"unreachable ({health['error']})"
    return "healthy" if health["healthy"] else f"unhealthy ({health['status_code']})"


def testbed_status() -> list[dict[str, str]]:
    """One row per component: what it is, where, its pid and whether it is up."""
    state = read_state()
    if not state:
        return []
    pg = state["postgres"]
    rows = [
        {
            "component": "postgres",
            "endpoint": redact_dsn(pg["app_dsn"]),
            "pid": str(pg.get("pid") or "-"),
            "status": "running" if _postgres_running(state) else "stopped",
            "detail": f"max_connections={pg['max_connections']}"
            if "max_connections" in pg
            else "external",
        }
    ]
    if "connector" in state:
        connector = state["connector"]
        rows.append(
            {
                "component": "connector",
                "endpoint": redact_dsn(connector["database_url"]),
                "pid": str(connector["pid"]),
                "status": _connector_status(connector["url"])
                if _running(state, "connector")
                else "stopped",
                "detail": f"control {connector['url']}",
            }
        )
    if "service" in state:
        service = state["service"]
        rows.append(
            {
                "component": "service",
                "endpoint": service["url"],
                "pid": str(service["pid"]),
                "status": (
                    _health(service["url"], service.get("health_path", "/health"))
                    if _running(state, "service")
                    else "stopped"
                ),
                "detail": f"{service_name(service.get('system'))}; log {_relative(service['log'])}",
            }
        )
    return rows


def _connector_status(url: str) -> str:
    try:
        state = ConnectorClient(url, timeout_s=2.0).state()
    except KitError:
        return "unreachable"
    return f"{state['instances']} instances, {state['utilisation']:.0%} used"


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
