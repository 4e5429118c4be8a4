"""Start the connector model as a process of its own (the testbed's), and wait for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaoskit.kit.errors import KitError
from chaoskit.kit.processes import pid_alive
from chaoskit.testbed.connector.client import ConnectorClient, ConnectorUnreachable
from chaoskit.testbed.postgres import find_free_ports

__all__ = ["ConnectorError", "RunningConnector", "launch_connector", "through_connector"]


class ConnectorError(KitError):
    """The connector did not start."""


def through_connector(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by the connector's listener."""
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


@dataclass
class RunningConnector:
    pid: int
    api_url: str
    database_url: str
    log_path: Path

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(self.pid):
                last = self.log_path.read_text().strip().splitlines()[-1:] or ["no output"]
                raise ConnectorError(f"the connector exited at start: {last[0]}")
            try:
                ConnectorClient(self.api_url, timeout_s=1.0).state()
                return
            except ConnectorUnreachable:
                time.sleep(0.05)
        raise ConnectorError(
            f"the connector did not answer within {timeout_s}s; see {self.log_path}"
        )


def launch_connector(
    upstream_dsn: str, settings: dict[str, Any], log_path: Path
) -> RunningConnector:
    """Start a detached connector in front of the server `upstream_dsn` names."""
    upstream = urlsplit(upstream_dsn)
    listen_port, api_port = find_free_ports(2)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "chaoskit.testbed.connector",
        "--upstream",
        f"{upstream.hostname}:{upstream.port or 5432}",
        "--listen-port",
        str(listen_port),
        "--api-port",
        str(api_port),
        "--config",
        json.dumps(settings),
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningConnector(
        process.pid,
        f"http://127.0.0.1:{api_port}",
        through_connector(upstream_dsn, listen_port),
        log_path,
    )
