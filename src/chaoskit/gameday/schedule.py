"""A foreground scheduler: a game day at every tick of a cron expression, never two at
once. A game day that overruns the next tick makes the scheduler skip the ticks it
missed and wait for the next one to come."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from chaoskit.kit.errors import KitError, shown

__all__ = ["CronError", "next_ticks", "run_schedule"]


class CronError(KitError):
    """The cron expression is not valid."""


def _iterator(expression: str, start: datetime) -> croniter:
    try:
        return croniter(expression, start)
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise CronError(
            f"--cron {shown(expression)} is not a cron expression ({error}); "
            "use five fields, e.g. '0 2 * * *' for 02:00 every day"
        ) from None


def next_ticks(expression: str, start: datetime, count: int) -> list[datetime]:
    """The `count` ticks of `expression` after `start` (UTC); CronError when there are
    none (say the 30th of February)."""
    ticks = _iterator(expression, start)
    try:
        return [ticks.get_next(datetime) for _ in range(count)]
    except CroniterBadDateError:
        raise CronError(
            f"--cron {shown(expression)} never comes (no such day): give a date that exists"
        ) from None


def run_schedule(
    expression: str,
    hold_gameday: Callable[[], str],
    log: Callable[[str], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    runs: int | None = None,
) -> None:
    """At each tick, `hold_gameday()` (which returns the game day's id); forever, or
    `runs` times."""
    held = 0
    while runs is None or held < runs:
        tick = next_ticks(expression, now(), 1)[0]
        log(f"next game day at {tick.isoformat()}")
        while (wait := (tick - now()).total_seconds()) > 0:
            sleep(min(wait, 60.0))
        log(f"game day {hold_gameday()} done")
        held += 1
