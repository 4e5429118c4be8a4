"""One error base for everything a user can act on, and the one place where it becomes
Chaos Toolkit's `ActivityFailed`.

Every room raises a `KitError` (or a subclass naming its subsystem) whose message is one
line naming the field and the fix. Activities are wrapped in `activity`, so a KitError
raised anywhere below them reaches the journal as an `ActivityFailed` with that line.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable
from typing import Any

__all__ = ["KitError", "activity", "shown"]

# a value echoed in an error line: long enough to recognise, never a 100,000-character dump
_SHOWN = reprlib.Repr(maxstring=60, maxother=60, maxlong=40, maxlist=6, maxtuple=6, maxdict=6,
                      maxset=6, maxlevel=3)  # fmt: skip


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
