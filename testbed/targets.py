"""Where load may go (loopback only, unless a target is allowed explicitly), and keeping
credentials out of what the kit writes."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TargetError", "check_load_target", "redact_dsn", "redact_secrets"]


class TargetError(ValueError):
    """A load target is malformed, cannot be resolved, or is not allowed."""


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by `***`, fit for journals and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def check_load_target(dsn: str, allowed_targets: Iterable[str] = ()) -> str:
    """Check that `dsn` points at loopback (or an allowed host); return its host.

    Raises TargetError naming the problem and the fix.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise TargetError(
            f"target_dsn {redact_dsn(dsn)!r} is not a PostgreSQL URL: "
            "use postgresql://user:password@127.0.0.1:5432/db"
        )
    host = parts.hostname
    if not host:
        raise TargetError(f"target_dsn {redact_dsn(dsn)!r} names no host: add one, e.g. 127.0.0.1")
    if host in set(allowed_targets):
        return host
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 5432)}
    except socket.gaierror:
        raise TargetError(
            f"target_dsn host {host!r} cannot be resolved: check the name, or use 127.0.0.1"
        ) from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise TargetError(
            f"target_dsn host {host!r} is not loopback: load goes to 127.0.0.1 or ::1 only, "
            "unless the host is listed in allowed_targets"
        )
    return host


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s/]+)(@)", re.IGNORECASE)
_SECRET_KEYS = re.compile(r"password|passwd|secret|token|private_key|credentials", re.I)


def redact_secrets(value: Any) -> Any:
    """A copy of `value` with URL passwords masked and secret-named keys' values hidden."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***\3", value)
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(k, str) and _SECRET_KEYS.search(k) and v else redact_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_secrets(v) for v in value]
    return value
