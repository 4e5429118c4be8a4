"""The deterministic startup manager: seven phases, in order, each under a deadline.

A failed or timed-out phase stops the sequence: the later phases are recorded
`blocked` and never run, and `DeterministicStartupError` says which phase failed,
after how long, and why. Every phase's outcome is printed as one JSON line on stdout,
which is how the probes (and Cloud Logging, in staging) read a startup.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from chaoskit.kit.errors import KitError

__all__ = [
    "PHASE_NAMES",
    "DeterministicStartupError",
    "Phase",
    "PhaseFailure",
    "PhaseResult",
    "StartupManager",
    "log_lifespan",
]

_CANCEL_GRACE_S = 1.0

PHASE_NAMES = ("init", "dependencies", "database", "cache", "services", "websocket", "finalize")


class PhaseFailure(Exception):
    """Raised by a phase's work to fail it with a named cause."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


@dataclass
class Phase:
    """One step of the startup: its work and its deadline.

    `cause_on_timeout` is asked, when the deadline passes, what the phase was waiting
    for (e.g. `too_many_connections` if its last connect was refused for that).
    """

    name: str
    work: Callable[[], Awaitable[None]]
    timeout_s: float
    cause_on_timeout: Callable[[], str] = lambda: "timeout"


@dataclass
class PhaseResult:
    phase: int
    name: str
    status: str = "pending"  # succeeded | timeout | failed | blocked
    started_at: str | None = None
    elapsed_s: float = 0.0
    cause: str | None = None
    detail: str | None = None


class DeterministicStartupError(KitError):
    """A startup phase failed: the service must not serve."""

    def __init__(self, result: PhaseResult) -> None:
        super().__init__(
            f"Phase {result.phase} ({result.name}) {result.status} after "
            f"{result.elapsed_s:.2f}s: {result.cause}: {result.detail}"
        )
        self.phase = result.phase
        self.name = result.name
        self.elapsed_s = result.elapsed_s
        self.cause = result.cause


class StartupManager:
    def __init__(self, phases: list[Phase]) -> None:
        self.phases = phases
        self.results = [PhaseResult(i, p.name) for i, p in enumerate(phases, 1)]
        self.status = "pending"  # running | ready | failed

    async def run(self) -> None:
        """Run every phase in order; raise DeterministicStartupError at the first failure."""
        self.status = "running"
        for phase, result in zip(self.phases, self.results, strict=True):
            await self._run_phase(phase, result)
            if result.status != "succeeded":
                for later in self.results[result.phase :]:
                    later.status = "blocked"
                    _log(later)
                self.status = "failed"
                raise DeterministicStartupError(result)
        self.status = "ready"

    async def _run_phase(self, phase: Phase, result: PhaseResult) -> None:
        result.started_at = datetime.now(UTC).isoformat()
        started = time.monotonic()
        work = asyncio.ensure_future(phase.work())
        done, _ = await asyncio.wait({work}, timeout=phase.timeout_s)
        result.elapsed_s = round(time.monotonic() - started, 3)
        if not done:
            result.status, result.cause = "timeout", phase.cause_on_timeout()
            result.detail = f"did not complete within {phase.timeout_s}s"
            # the deadline is the deadline: the work's cleanup gets a moment, not more
            work.cancel()
            await asyncio.wait({work}, timeout=_CANCEL_GRACE_S)
        elif isinstance(work.exception(), PhaseFailure):
            failure = work.exception()
            result.status, result.cause, result.detail = "failed", failure.cause, str(failure)
        elif work.exception() is not None:
            error = work.exception()
            result.status, result.cause = "failed", "error"
            result.detail = f"{type(error).__name__}: {error}"
        else:
            result.status = "succeeded"
        _log(result)

    def report(self) -> dict:
        """What `/health/startup` returns: the overall status and every phase."""
        return {"status": self.status, "phases": [asdict(r) for r in self.results]}


def _log(result: PhaseResult) -> None:
    print(json.dumps({"event": "phase", **asdict(result)}), file=sys.stdout, flush=True)


def log_lifespan(startup_failed: bool) -> None:
    """The lifespan's verdict on the startup, as `app.state.startup_failed` holds it."""
    line = {"event": "lifespan", "startup_failed": startup_failed}
    print(json.dumps(line), file=sys.stdout, flush=True)
