"""Keeping credentials out of everything the kit writes: journals, reports, logs, stdout.

Passwords are masked in every form a target comes in (URL userinfo, a `password=` query
parameter, a keyword DSN's `password=...`), and values under keys named like secrets
(`password`, `secret`, `token`, ...) are hidden whole.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["RedactingFilter", "mask_passwords_in_logs", "redact_dsn", "redact_secrets"]

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)([^@\s/'\"]+)(@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\",)}]+)", re.I)
_SECRET_KEYS = re.compile(r"password|passwd|secret|token|private_key|credentials", re.I)


def _redact_text(text: str) -> str:
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", text))


def redact_dsn(dsn: str) -> str:
    """The target with its password replaced by `***`, fit for journals and logs."""
    return _redact_text(dsn)


def redact_secrets(value: Any) -> Any:
    """A copy of `value` with passwords masked and secret-named keys' values hidden."""
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(k, str) and _SECRET_KEYS.search(k) and v else redact_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_secrets(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Masks passwords in every record a logger passes on (console and log file alike)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def mask_passwords_in_logs(name: str = "chaostoolkit") -> None:
    """Mask passwords in every record of the logger `name` (Chaos Toolkit's console and
    `chaostoolkit.log` both hang off it); idempotent."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
