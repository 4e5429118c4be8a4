"""Undo for changes of configuration: the state before an experiment's first change is
saved in the registry, and the undo puts it back.

Changing the same thing twice in one experiment keeps the first baseline, so the undo
restores what the experiment found, not an intermediate step. Undoing what was never
changed does nothing (rollbacks are idempotent), and whatever is still saved when a run
ends is restored by the testbed control's safety net.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaoskit.kit import registry

__all__ = ["SavedState", "remember_first", "undo"]


@dataclass
class SavedState:
    kind: str
    name: str
    restore: Callable[[], dict[str, Any]]

    def stop(self) -> dict[str, Any]:
        return self.restore()


def remember_first(kind: str, name: str, save: Callable[[], Callable[[], dict[str, Any]]]) -> None:
    """Unless a baseline for (kind, name) is saved, call `save()`, which reads the
    current state and returns the function that restores it."""
    if registry.lookup(kind, name) is None:
        registry.register(SavedState(kind, name, save()))


def undo(kind: str, name: str) -> dict[str, Any] | None:
    """Restore the saved baseline; None when nothing was changed."""
    saved = registry.unregister(kind, name)
    return None if saved is None else saved.stop()
