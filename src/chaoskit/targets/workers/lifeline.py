"""The worker's side of the lifeline: parameters in, a stop signal out, events on stdout."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

__all__ = ["Lifeline", "emit"]


def emit(event: str, **fields: Any) -> None:
    """Report one event to the parent as a JSON line."""
    print(json.dumps({"event": event, **fields}), flush=True)


class Lifeline:
    """stdin, read asynchronously: the first line holds the parameters, then commands."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.stop = asyncio.Event()

    @classmethod
    async def open(cls) -> tuple[Lifeline, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        line = await reader.readline()
        if not line:
            raise SystemExit("no parameters on stdin")
        return cls(reader), json.loads(line)

    async def watch(self) -> None:
        """Set `stop` when the parent says `stop` or stdin closes (the parent died)."""
        while True:
            line = await self._reader.readline()
            if not line or json.loads(line).get("command") == "stop":
                self.stop.set()
                return
