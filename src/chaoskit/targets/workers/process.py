"""The parent's side of a pressure worker: start it, read its events, stop it."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from typing import Any

from chaoskit.kit.errors import KitError
from chaoskit.kit.processes import stop_popen

__all__ = ["WorkerError", "WorkerProcess"]

_EXIT_WAIT_S = 5.0


class WorkerError(KitError):
    """The worker died or did not answer in time."""


class WorkerProcess:
    """A worker running `python -m <module> <title>`, fed `params` on stdin.

    `title` shows in `ps`, so an operator can tell a flood from anything else.
    """

    def __init__(self, module: str, title: str, params: dict[str, Any]) -> None:
        self.title = title
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, title],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_events, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._send(params)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the worker is gone already: stop() reports what it left

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self._events.put(json.loads(line))
            except ValueError:
                continue
        self._events.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line.rstrip())

    def next_event(self, expected: str, timeout_s: float) -> dict[str, Any]:
        """Wait for the event named `expected`; earlier events are skipped."""
        while True:
            try:
                event = self._events.get(timeout=timeout_s)
            except queue.Empty:
                raise WorkerError(
                    f"{self.title} sent no '{expected}' within {timeout_s:.1f}s"
                ) from None
            if event is None:
                last = self._stderr[-1] if self._stderr else "no message"
                raise WorkerError(f"{self.title} exited before '{expected}': {last}")
            if event.get("event") == "error":
                raise WorkerError(event.get("message", "worker failed"))
            if event.get("event") == expected:
                return event

    def stop(self, timeout_s: float) -> dict[str, Any]:
        """Ask the worker to release, wait for its `released` report, reap it."""
        self._send({"command": "stop"})
        try:
            report = self.next_event("released", timeout_s)
            report.pop("event")
        except WorkerError as error:
            report = {"released_cleanly": False, "reason": str(error)}
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_EXIT_WAIT_S)
        report["exit_code"] = stop_popen(self.process, grace_s=_EXIT_WAIT_S)
        return report
