"""The connector's event log: what happened and when (scaling, refusals, config)."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

__all__ = ["EventLog"]


class EventLog:
    def __init__(self, keep: int = 1000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0

    def record(self, kind: str, **details: Any) -> dict[str, Any]:
        now = time.time()
        self._seq += 1
        event = {
            "seq": self._seq,
            "time": now,
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "type": kind,
            **details,
        }
        self._events.append(event)
        return event

    def since(self, epoch_s: float = 0.0) -> list[dict[str, Any]]:
        """Events recorded at or after `epoch_s` (seconds since the epoch), oldest first."""
        # a microsecond of slack: `since` may come back from the ISO form of `at`
        return [e for e in self._events if e["time"] >= epoch_s - 1e-6]

    def recent(self, count: int = 20) -> list[dict[str, Any]]:
        return list(self._events)[-count:]
