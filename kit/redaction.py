"""Keeping credentials out of everything the kit writes: journals, reports, logs, stdout."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_dsn", "redact_secrets"]


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by `***`, fit for journals and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


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
