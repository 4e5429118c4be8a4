"""One error base for everything a user can act on, and the one place where it becomes
Chaos Toolkit's `ActivityFailed`.

Every room raises a `KitError`, or the subclass that names its subsystem, whose message
is one line naming the field and the fix:

    KitError
    ├── kit          VarFileError (a var-file), TargetError (a load target), LockHeld
    ├── testbed      TestbedError (up, down, its state: StateError), PostgresError,
    │                ConnectorError, ConnectorUnreachable, ConfigError (the connector's
    │                settings), SystemUnderTestError and StartupLogError (a `service`),
    │                SettingsError (the reference service's), DeterministicStartupError
    │                (the reference service's startup failed: uvicorn exits 3)
    ├── targets      GoogleApiError, OperationRunning (Google Cloud), WorkerError (a
    │                pressure worker)
    ├── verification ConfigurationError, ExpectationError, ChainError, KnobError,
    │                GuardrailRefusal
    └── gameday      SuiteError, ExperimentFileError, SeriesError, LimitError, CronError

Where it is converted, once each: an activity's (wrapped in `activity`) becomes
`ActivityFailed` with that line; a control's stops the run (`kit.fail_closed`); a
command's is its one error line and exit code. Exceptions that are not a user's to act
on are control flow inside one module (a connector's `NoSlot`, a phase's `PhaseFailure`,
a sweep's `SweepInterrupted`) and never leave it.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable
from typing import Any

__all__ = ["KitError", "activity", "shown"]

# a value echoed in an error line: long enough to recognise, never a 100,000-character dump
_SHOWN = reprlib.Repr(
    maxstring=60, maxother=60, maxlong=40, maxlist=6, maxtuple=6, maxdict=6, maxset=6, maxlevel=3
)


class KitError(Exception):
    """A failure the user can act on; the message is one line naming the field and the fix."""


def shown(value: Any, limit: int = 60) -> str:
    """`value` as an error line echoes it: its repr, cut in the middle past about
    `limit` characters."""
    if limit == _SHOWN.maxstring:
        return _SHOWN.repr(value)
    return reprlib.Repr(maxstring=limit, maxother=limit, maxlong=limit).repr(value)


def activity[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Mark a Chaos Toolkit activity: a KitError it meets becomes ActivityFailed.

    The wrapper keeps the function's name, signature and docstring, which chaoslib reads
    to validate arguments and `chaos discover` to document the activity.
    """

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except KitError as error:
            # imported here: service and worker processes import this module, and
            # chaoslib takes a second to import
            from chaoslib.exceptions import ActivityFailed

            raise ActivityFailed(str(error)) from None

    return run
