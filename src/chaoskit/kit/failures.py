"""Name why a database connection failed, in the kit's words.

The service's Phase 3 and the flood both report causes with these names, so a journal
can say `too_many_connections` rather than quote driver messages. A service of the
user's own says it in its own words (PostgreSQL's messages and SQLSTATEs, its driver's
exception names): `cause_in_text` maps those onto the same names.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable

import asyncpg

__all__ = [
    "CAUSES",
    "MISCONFIGURED_CAUSES",
    "RETRYABLE_CAUSES",
    "TEXT_CAUSES",
    "cause_in_text",
    "classify_connect_error",
    "flood_applied",
    "misconfigured",
]

# the kit's cause vocabulary: what a startup report's `cause` and a flood's failures say
CAUSES = (
    "too_many_connections",
    "connect_timeout",
    "pool_timeout",
    "refused",
    "reset",
    "starting_up",
    "auth_failed",
    "unknown_host",
    "unknown_database",
    "schema_missing",
    "slow_schema_query",
    "error",
)
# what services really print, by cause, tried in this order (the first that matches
# names it): PostgreSQL's SQLSTATEs and messages, then the exception names of asyncpg,
# psycopg 2 and 3, SQLAlchemy and the standard library. Timeouts come last: a pool's
# timeout message and a refused connect may both mention one.
TEXT_CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (cause, re.compile(pattern, re.IGNORECASE))
    for cause, pattern in (
        (
            "too_many_connections",
            r"\b53300\b|too many (clients|connections)|remaining connection slots are "
            r"reserved|TooManyConnections",
        ),
        (
            "pool_timeout",
            r"QueuePool limit of size|PoolTimeout|sqlalchemy\.exc\.TimeoutError|couldn't get a "
            r"connection after|pool[ _]timeout",
        ),
        (
            "starting_up",
            r"\b57P03\b|the database system is (starting up|shutting down|in recovery)|"
            r"CannotConnectNow",
        ),
        (
            "auth_failed",
            r"\b28P01\b|\b28000\b|password authentication failed|no pg_hba\.conf entry|"
            r"InvalidPassword|InvalidAuthorizationSpecification",
        ),
        ("unknown_database", r"\b3D000\b|database \"[^\"]*\" does not exist|InvalidCatalogName"),
        ("schema_missing", r"\b42P01\b|relation \"[^\"]*\" does not exist|UndefinedTable"),
        (
            "slow_schema_query",
            r"\b57014\b|\b55P03\b|canceling statement due to (statement|lock) timeout|"
            r"QueryCanceled|LockNotAvailable",
        ),
        (
            "unknown_host",
            r"could not translate host name|Name or service not known|nodename nor servname|"
            r"Temporary failure in name resolution|gaierror",
        ),
        ("refused", r"connection[ _]refused|ConnectionRefused|ECONNREFUSED"),
        (
            "reset",
            r"connection reset|ConnectionReset|ECONNRESET|server closed the connection "
            r"unexpectedly|ConnectionDoesNotExist",
        ),
        (
            "connect_timeout",
            r"timeout expired|connect(ion)?[ _]time(d )?out|ConnectionTimeout|timed out|"
            r"TimeoutError",
        ),
    )
)

# the database may come back: a startup keeps trying these until its deadline
RETRYABLE_CAUSES = frozenset(
    {"too_many_connections", "connect_timeout", "refused", "starting_up", "reset"}
)
# not the pressure but the setup: wrong credentials, host or database, nothing listening
MISCONFIGURED_CAUSES = frozenset(
    {"auth_failed", "unknown_host", "unknown_database", "refused", "error"}
)


def misconfigured(failed: dict[str, int]) -> int:
    """How many of the failures counted by cause say the setup is wrong, not the load."""
    return sum(n for cause, n in failed.items() if cause in MISCONFIGURED_CAUSES)


def flood_applied(established: int, failed: dict[str, int]) -> bool:
    """Whether a flood took hold as declared: it holds connections, and none of its
    connects failed for the setup's sake (only for the load's: the database or the
    connector being full)."""
    return established > 0 and not misconfigured(failed)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (SQLAlchemy's `.orig`, `__cause__`)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def classify_connect_error(exc: BaseException) -> str:
    """The cause of a failed connect or checkout, e.g. `too_many_connections`."""
    for err in _chain(exc):
        if type(err).__name__ == "TimeoutError" and type(err).__module__.startswith("sqlalchemy"):
            return "pool_timeout"
        if isinstance(err, asyncpg.TooManyConnectionsError):
            return "too_many_connections"
        if isinstance(err, asyncpg.CannotConnectNowError):
            return "starting_up"
        if isinstance(
            err,
            asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError,
        ):
            return "auth_failed"
        if isinstance(err, asyncpg.InvalidCatalogNameError):
            return "unknown_database"
        if isinstance(err, asyncpg.UndefinedTableError):
            return "schema_missing"
        if isinstance(err, socket.gaierror):
            return "unknown_host"
        if isinstance(err, ConnectionRefusedError):
            return "refused"
        if isinstance(err, ConnectionResetError | asyncpg.ConnectionDoesNotExistError):
            return "reset"
        if isinstance(err, TimeoutError):
            return "connect_timeout"
    return "error"


def cause_in_text(text: str, own: Iterable[tuple[re.Pattern[str], str]] = ()) -> str | None:
    """The kit's cause for what a service printed (`text`: a captured cause, an error
    line), None when nothing in it names one. `own` are a profile's patterns, tried
    first; a text that is a cause's name already is that cause."""
    text = text.strip()
    if text in CAUSES:
        return text
    for pattern, cause in own:
        if pattern.search(text):
            return cause
    return next((cause for cause, pattern in TEXT_CAUSES if pattern.search(text)), None)
