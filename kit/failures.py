"""Name why a database connection failed, in the kit's words.

The service's Phase 3 and the flood both report causes with these names, so a journal
can say `too_many_connections` rather than quote driver messages.
"""

from __future__ import annotations

import socket

import asyncpg

__all__ = [
    "MISCONFIGURED_CAUSES",
    "RETRYABLE_CAUSES",
    "classify_connect_error",
    "flood_applied",
    "misconfigured",
]

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
