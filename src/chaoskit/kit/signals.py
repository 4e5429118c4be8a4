"""Holding SIGINT and SIGTERM off while the kit finishes what must be finished whole
(the verdict and the journal, the testbed's shutdown): the first signal is recorded and
lets the work wind up at once; a second one interrupts as usual."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Deferred", "deferred_signals", "quiet_interrupted_tasks"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Deferred:
    """The signal received meanwhile (`received`, its name), and `event`, set by it, for
    the work to wind up early."""

    received: str | None = None
    event: threading.Event = field(default_factory=threading.Event)


@contextmanager
def deferred_signals() -> Iterator[Deferred]:
    """Record SIGINT and SIGTERM instead of raising, for the duration; restore after.

    Outside the main thread (where no handler can be set) it records nothing."""
    deferred = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield deferred
        return

    def record(signum: int, frame: FrameType | None) -> None:
        if deferred.received is not None:  # the second one: the user insists
            raise KeyboardInterrupt
        deferred.received = signal.Signals(signum).name
        deferred.event.set()

    previous: dict[int, Any] = {s: signal.signal(s, record) for s in _SIGNALS}
    try:
        yield deferred
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _InterruptedTask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0] if record.exc_info else None
        return not (isinstance(kind, type) and issubclass(kind, SystemExit | KeyboardInterrupt))


def quiet_interrupted_tasks() -> None:
    """An interruption (the watchdog's or a stop condition's SIGUSR1, Ctrl-C) that lands
    inside an asyncio task is reported by Chaos Toolkit, and the run winds up as usual;
    asyncio would also print that task's traceback ("Task exception was never
    retrieved"). Drop those records only; idempotent."""
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _InterruptedTask) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(_InterruptedTask())
