"""Where load may go: loopback only (127.0.0.1, ::1, or this machine's Unix sockets),
unless a host is listed in `allowed_targets`. Every form of target a user can give is
read by `chaoskit.kit.dsn`, and every host it may reach is checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from chaoskit.kit.dsn import Dsn, find_dsns, parse_dsn
from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.redaction import redact_secrets

__all__ = ["TargetError", "check_load_target", "check_load_targets", "postgres_urls"]


class TargetError(KitError):
    """A load target is malformed, cannot be resolved, or is not allowed."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_host(host: str, allowed: set[str], field: str) -> None:
    if Dsn.is_socket(host) or host in allowed or _is_loopback(host):
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise TargetError(
            f"{field} host {shown(host)} cannot be resolved: check the name, or use 127.0.0.1"
        ) from None
    if not all(_is_loopback(a) for a in addresses):
        raise TargetError(
            f"{field} host {shown(host)} is not loopback: load goes to 127.0.0.1 or ::1 only, "
            "unless the host is listed in allowed_targets"
        )


def check_load_target(
    dsn: str, allowed_targets: Iterable[str] = (), field: str = "target_dsn"
) -> str:
    """Check that every host `dsn` may reach is loopback (or allowed); return the first.

    Raises TargetError naming `field`, the problem and the fix; the password is masked.
    """
    parsed = parse_dsn(dsn)
    if parsed is None:
        raise TargetError(
            f"{field} {shown(redact_secrets(dsn))} is not a PostgreSQL target: use "
            "postgresql://user:password@127.0.0.1:5432/db or host=127.0.0.1 dbname=db"
        )
    if not parsed.hosts:
        raise TargetError(
            f"{field} {shown(redact_secrets(dsn))} names no host: add one, e.g. 127.0.0.1"
        )
    allowed = set(allowed_targets)
    for host in parsed.hosts:
        _check_host(host, allowed, field)
    return parsed.hosts[0]


def check_load_targets(value: Any, allowed_targets: Iterable[str], field: str) -> None:
    """`check_load_target` for every target named anywhere in `value`."""
    for dsn in find_dsns(value):
        check_load_target(dsn.text, allowed_targets, field)


def postgres_urls(value: Any) -> list[str]:
    """Every database target named anywhere in `value`, in whatever form."""
    return [dsn.text for dsn in find_dsns(value)]
