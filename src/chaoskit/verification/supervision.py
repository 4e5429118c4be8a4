"""Supervising a run while its method plays: the watchdog, interruptions, and failures
of the kit's own watchers.

During the method the kit watches from threads of its own: the watchdog
(`max_run_duration_s`), the stop conditions and the timeline sampler. A watcher that
fails, of any exception type, stops the method as the watchdog does (SIGUSR1: Chaos
Toolkit interrupts it and plays the rollbacks) with one line, and the verdict is
`aborted` with that line: never a watcher that dies quietly and leaves the run going
unguarded.

Any interruption of the method (Ctrl-C, SIGTERM, the watchdog, a stop condition, a
failure) first releases the pressure (floods, CPU and lock sessions) in a thread of its
own, while Chaos Toolkit waits for background observers to finish; the rollbacks then
find it released and record what was. A signal during the rollbacks is held until every
rollback has played (a second one interrupts as usual).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from chaoslib.exit import exit_gracefully

from chaoskit.kit.fail_closed import failure_line
from chaoskit.kit.signals import Deferred, deferred_signals
from chaoskit.targets.workers.pressure import release_pressure

__all__ = ["RunSupervisor"]

logger = logging.getLogger("chaostoolkit")

_RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
_JOIN_S = 30.0
# how a failure's line ends, by the part of the run it came in
_CONSEQUENCE = {
    "before": " before the method: nothing ran",
    "method": " during the method: the run was stopped, its rollbacks played",
    "after": " after the method",
}


class RunSupervisor:
    """One run's phase (`before`, `method`, `after`), what stopped it, and its watchers."""

    def __init__(self) -> None:
        self.phase = "before"
        self.failure: str | None = None  # the first failure of the kit's own parts
        self.interruption: str | None = None  # why the kit interrupted the method
        self.released: dict[str, Any] | None = None  # what an interruption released at once
        self.rollback_signal: str | None = None  # a signal held during the rollbacks
        self._guard = threading.Lock()
        self._release_guard = threading.Lock()
        self._ended = threading.Event()  # the method ended: the watchdog stands down
        self._wake = threading.Event()  # the releaser: an interruption, or the end
        self._released_once = threading.Event()  # the releaser is done (or had nothing to do)
        self._interrupted_in_method = False
        self._threads: list[threading.Thread] = []
        self._relayed: dict[int, Any] = {}
        self._held: contextlib.ExitStack | None = None
        self._deferred: Deferred | None = None

    # --- the method -----------------------------------------------------------------------

    def begin_method(self, max_run_duration_s: float) -> str | None:
        """The watchers are armed and the method is about to play: arm the watchdog and
        the release at interruption, unless a watcher failed while being armed (its
        failure is returned: the method must not start)."""
        with self._guard:
            if self.failure is not None:
                return self.failure
            self.phase = "method"
        for name, target, args in (
            ("kit-watchdog", self._watch, (max_run_duration_s,)),
            ("kit-release-at-interruption", self._release_at_interruption, ()),
        ):
            thread = threading.Thread(target=target, args=args, daemon=True, name=name)
            thread.start()
            self._threads.append(thread)
        return None

    def relay_signals(self) -> None:
        """Ctrl-C, SIGTERM and SIGUSR1 during the method release the pressure first, then
        go on to whatever handled them (Chaos Toolkit's interruption). Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _RELAYED:
            self._relayed[signum] = signal.signal(signum, self._relay)

    def _relay(self, signum: int, frame: FrameType | None) -> None:
        self._note_interruption()
        previous = self._relayed.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # the default: restore it and let it act
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _note_interruption(self) -> None:
        if self.phase == "method":
            self._interrupted_in_method = True
        self._wake.set()

    def interrupt(self, reason: str | None = None) -> bool:
        """Stop the method now, its rollbacks played (`reason`, if given, is the
        verdict's); nothing happens outside the method (the rollbacks are never cut)."""
        return self._stop_method(reason=reason)

    def fail(self, part: str, error: BaseException, say: bool = True) -> str:
        """A part of the kit failed: the run stops (during the method: now, with its
        rollbacks), and the verdict says so in one line, which is returned (and logged,
        unless `say` is false: the caller's interruption says it)."""
        with self._guard:
            reason = f"the kit's {part} failed ({failure_line(error)}){_CONSEQUENCE[self.phase]}"
            first = self.failure is None
            if first:
                self.failure = reason
        if first and say and self.phase != "before":  # before the method, the stop says it
            logger.error(reason)
        self._stop_method()
        return self.failure or reason

    def _stop_method(self, reason: str | None = None) -> bool:
        with self._guard:
            if self.phase != "method":
                return False
            if reason is not None and self.interruption is None:
                self.interruption = reason
            self._note_interruption()
        # from a watcher's thread: the pressure goes now, before Chaos Toolkit's
        # interruption reaches the main thread and its rollbacks begin
        self._release_once()
        exit_gracefully()  # SIGUSR1: Chaos Toolkit interrupts the method, rollbacks played
        return True

    def end_method(self) -> None:
        """The method is over: the watchers stand down, signals go back to their handlers.
        Idempotent."""
        with self._guard:
            self.phase = "after"
        self._ended.set()
        self._wake.set()
        while self._relayed:
            signum, previous = self._relayed.popitem()
            if signal.getsignal(signum) == self._relay:
                signal.signal(signum, previous)

    def _watch(self, max_run_duration_s: float) -> None:
        try:
            if self._ended.wait(max_run_duration_s):
                return
            if self.interrupt(f"interrupted at max_run_duration_s={max_run_duration_s:g}"):
                logger.error(
                    f"The run exceeded {max_run_duration_s:g}s: interrupting it, with rollbacks"
                )
        except Exception as error:  # noqa: BLE001 - a dead watchdog must stop the run
            self.fail("watchdog", error)

    def _release_at_interruption(self) -> None:
        """A signal's interruption (its handler only notes it): released from here."""
        self._wake.wait()
        if self._interrupted_in_method:
            self._release_once()

    def _release_once(self) -> None:
        """Release the run's pressure (floods, CPU sessions, locks), once, and record it."""
        with self._release_guard:
            if self.released is not None:
                return
            failure = None
            at = datetime.now(UTC).isoformat()
            try:
                released = release_pressure()
            except Exception as error:  # noqa: BLE001 - the rollbacks release it all the same
                released, failure = [], error
            self.released = {
                "at": at,
                "done_at": datetime.now(UTC).isoformat(),
                "released": released,
            }
            self._released_once.set()
        if failure is not None:
            self.fail("release of the pressure at the interruption", failure)
        elif released:
            logger.warning(
                "Interrupted: released the pressure at once ("
                + ", ".join(released)
                + "), before waiting for observers"
            )

    def wait_for_release(self) -> None:
        """After an interruption of the method, the rollbacks wait (bounded) until the
        pressure was released at once: they find it released and record what was,
        however slow this machine is to run the releaser's thread."""
        if self._interrupted_in_method:
            self._released_once.wait(_JOIN_S)

    # --- the rollbacks --------------------------------------------------------------------

    def hold_signals(self) -> None:
        """Until `release_signals`, SIGINT and SIGTERM are held: every rollback plays."""
        if self._held is None:
            self._held = contextlib.ExitStack()
            self._deferred = self._held.enter_context(deferred_signals())

    def release_signals(self) -> None:
        """The rollbacks are over: a signal held meanwhile is recorded, handlers restored."""
        held, self._held = self._held, None
        if held is not None:
            held.close()
        if self._deferred is not None and self._deferred.received and not self.rollback_signal:
            self.rollback_signal = self._deferred.received
            logger.warning(
                f"{self.rollback_signal} came during the rollbacks: they all played "
                "first; the run stops now"
            )

    def stand_down(self) -> None:
        """Everything the supervisor runs is stopped, and waited for (bounded)."""
        self.end_method()
        self.release_signals()
        for thread in self._threads:
            thread.join(timeout=_JOIN_S)
