"""Failing closed: a failure inside the kit's controls stops the run, whatever its type.

Chaos Toolkit stops a run only on `InterruptExecution` raised by a control; any other
exception it logs at DEBUG and goes on, so a guardrail that raised a `TypeError` would
leave the run going unguarded while the console looked normal. The kit's controls
never rely on it: every hook turns any failure into a stop with one line, and the
reason is kept with the experiment for the kit's verdict (`aborted`, that line), even
when the stop came from the testbed's control rather than the kit's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn

from chaoslib.exceptions import InterruptExecution

__all__ = [
    "JOURNAL_SECTION",
    "fail_the_run",
    "failure_line",
    "stop_before_the_method",
    "stop_hook",
    "stopped_reason",
]

# the first reason a control stopped the run, kept with the experiment for the verdict
_STOPPED_KEY = "_startup_chaos_kit_stopped"
_MAX_LINE = 300
JOURNAL_SECTION = "startup_chaos_kit"  # the kit's section of a journal, with its verdict


def failure_line(error: BaseException) -> str:
    """`<type>: <message>`, on one line and cut, for a failure no user caused."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def fail_the_run(journal: dict[str, Any] | None, reason: str) -> None:
    """What went wrong once the verdict was decided (a leftover that could not be
    stopped, say) fails the run: the verdict becomes `error` with `reason`, never a pass
    that hides it."""
    if journal is None:
        return
    journal["status"] = "failed"
    section = journal.get(JOURNAL_SECTION)
    if isinstance(section, dict):
        section["reason"] = f"{reason} (the run's verdict was {section.get('verdict')})"
        section["verdict"] = "error"


def stopped_reason(experiment: dict[str, Any]) -> str | None:
    """Why a control stopped the run, when one did."""
    return experiment.get(_STOPPED_KEY)


def stop_before_the_method(experiment: dict[str, Any], reason: str) -> NoReturn:
    """Stop the run before its method: the reason kept for the verdict (the first one
    wins), nothing to undo since nothing ran, and Chaos Toolkit told the only way it
    listens."""
    reason = reason.splitlines()[0] if reason.strip() else "a control stopped the run"
    experiment.setdefault(_STOPPED_KEY, reason)
    experiment["rollbacks"] = []  # nothing ran, so nothing to undo
    raise InterruptExecution(reason)


def stop_hook[**P](part: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """A control's before-hook that fails closed: any exception it raises stops the run
    before its method, as `the <part> failed (<type>: <message>): nothing ran`; an
    `InterruptExecution` of its own keeps its message as the reason."""

    def wrap(hook: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(hook)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
            experiment = kwargs.get("context", args[0] if args else None)
            try:
                hook(*args, **kwargs)
            except InterruptExecution as stop:
                if isinstance(experiment, dict):
                    stop_before_the_method(experiment, str(stop))
                raise
            except Exception as error:  # noqa: BLE001 - fail closed, whatever it was
                # Chaos Toolkit prints an interruption's message: the one line
                reason = f"the {part} failed ({failure_line(error)}): nothing ran"
                if isinstance(experiment, dict):
                    stop_before_the_method(experiment, reason)
                raise InterruptExecution(reason) from None

        return guarded

    return wrap
