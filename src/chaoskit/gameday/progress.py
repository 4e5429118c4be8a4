"""The game day's live progress: which experiment, which part of its run, time used and
left. A live table on a terminal; one line per change when the output is a file (CI)."""

from __future__ import annotations

import time
from typing import Any

from chaoslib.run import RunEventHandler
from chaoslib.types import Activity, Experiment, Journal, Run
from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = ["GameDayProgress"]


class GameDayProgress(RunEventHandler):
    def __init__(self, gameday_id: str, total: int, budget_s: float, console: Console) -> None:
        self.gameday_id = gameday_id
        self.total = total
        self.budget_s = budget_s
        self.console = console
        self.started = time.monotonic()
        self.index = 0
        self.experiment = "preflight"
        self.phase = "starting"
        self.results: list[tuple[str, str, bool]] = []
        self._live: Live | None = None

    # --- the game day's own steps ----------------------------------------------------

    def __enter__(self) -> GameDayProgress:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def remaining_s(self) -> float:
        return self.budget_s - self.elapsed_s()

    def begin(self, index: int, name: str) -> None:
        self.index, self.experiment = index, name
        self._set("starting")

    def finished(self, name: str, verdict: str, as_expected: bool) -> None:
        self.results.append((name, verdict, as_expected))
        mark = "as expected" if as_expected else "NOT as expected"
        self._say(f"{name}: {verdict} ({mark})")

    def note(self, message: str) -> None:
        self._say(message)

    # --- Chaos Toolkit's run events --------------------------------------------------

    def start_hypothesis_before(self, experiment: Experiment) -> None:
        self._set("steady state (before)")

    def start_method(self, experiment: Experiment) -> None:
        self._set("method")

    def start_activity(self, activity: Activity) -> None:
        self._set(f"{self.phase.split(':')[0]}: {activity.get('name')}")

    def activity_completed(self, activity: Activity, run: Run) -> None:
        self._refresh()

    def start_rollbacks(self, experiment: Experiment) -> None:
        self._set("rollbacks")

    def rollbacks_completed(self, experiment: Experiment, journal: Journal) -> None:
        self._set("verification and recovery")

    # --- rendering ---------------------------------------------------------------------

    def _set(self, phase: str) -> None:
        self.phase = phase
        if self._live is None:
            self._say(f"[{self.index}/{self.total}] {self.experiment}: {phase}")
        self._refresh()

    def _say(self, message: str) -> None:
        clock = f"{self.elapsed_s():6.0f}s used, {max(0.0, self.remaining_s()):5.0f}s left"
        if self._live is not None:
            self._live.console.print(f"{clock} | {message}")
        else:
            self.console.print(f"{clock} | {message}", highlight=False)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Table:
        table = Table(title=f"Game day {self.gameday_id}", show_header=False)
        table.add_row("experiment", f"{self.index}/{self.total}  {self.experiment}")
        table.add_row("phase", self.phase)
        table.add_row("elapsed", f"{self.elapsed_s():.0f}s")
        table.add_row("budget left", f"{max(0.0, self.remaining_s()):.0f}s")
        done = ", ".join(f"{n}={v}" for n, v, _ in self.results) or "-"
        table.add_row("verdicts", done)
        return table
