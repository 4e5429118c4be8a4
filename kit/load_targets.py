"""Where load may go: loopback only, unless a target is allowed explicitly."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from chaoskit.kit.errors import KitError
from chaoskit.kit.redaction import redact_dsn

__all__ = ["TargetError", "check_load_target"]


class TargetError(KitError):
    """A load target is malformed, cannot be resolved, or is not allowed."""


def check_load_target(
    dsn: str, allowed_targets: Iterable[str] = (), field: str = "target_dsn"
) -> str:
    """Check that `dsn` points at loopback (or an allowed host); return its host.

    Raises TargetError naming the problem and the fix.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise TargetError(
            f"{field} {redact_dsn(dsn)!r} is not a PostgreSQL URL: "
            "use postgresql://user:password@127.0.0.1:5432/db"
        )
    host = parts.hostname
    if not host:
        raise TargetError(f"{field} {redact_dsn(dsn)!r} names no host: add one, e.g. 127.0.0.1")
    if host in set(allowed_targets):
        return host
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 5432)}
    except socket.gaierror:
        raise TargetError(
            f"{field} host {host!r} cannot be resolved: check the name, or use 127.0.0.1"
        ) from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise TargetError(
            f"{field} host {host!r} is not loopback: load goes to 127.0.0.1 or ::1 only, "
            "unless the host is listed in allowed_targets"
        )
    return host
