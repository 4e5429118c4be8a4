"""The one registry of running perturbations in this process.

Actions register what they start (a flood worker, a fresh service instance) under a kind
and a name; probes look instances up by name; undo actions remove and stop them; the
testbed control stops whatever is still registered when an experiment ends.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

__all__ = ["Perturbation", "lookup", "register", "running", "stop_all", "unregister"]


class Perturbation(Protocol):
    kind: str
    name: str

    def stop(self) -> dict[str, Any]:
        """Release everything this perturbation holds; return what was released."""
        ...


_lock = threading.Lock()
_running: dict[tuple[str, str], Perturbation] = {}


def register(perturbation: Perturbation) -> None:
    """Record a running perturbation; its (kind, name) must be free."""
    key = (perturbation.kind, perturbation.name)
    with _lock:
        if key in _running:
            raise ValueError(f"a {key[0]} named {key[1]!r} is already running")
        _running[key] = perturbation


def lookup(kind: str, name: str) -> Perturbation | None:
    with _lock:
        return _running.get((kind, name))


def unregister(kind: str, name: str) -> Perturbation | None:
    """Remove and return the perturbation, or None when nothing runs under that name."""
    with _lock:
        return _running.pop((kind, name), None)


def running() -> list[Perturbation]:
    with _lock:
        return list(_running.values())


def stop_all() -> list[dict[str, Any]]:
    """Stop every registered perturbation (the safety net at the end of a run)."""
    with _lock:
        everything = list(_running.values())
        _running.clear()
    return [{"kind": p.kind, "name": p.name, **p.stop()} for p in everything]
