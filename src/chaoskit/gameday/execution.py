"""Running experiment files in this process, as the game day and the sweeps do: through
chaostoolkit-lib, with rollbacks always, the user's Chaos Toolkit settings (global
controls, notifications) honoured, and SIGINT/SIGTERM turned into a stop after the
current run."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chaoslib.control import cleanup_global_controls, load_global_controls
from chaoslib.experiment import run_experiment
from chaoslib.run import RunEventHandler
from chaoslib.types import Settings, Strategy
from chaostoolkit.signals import SignalRecorder

from chaoskit.gameday.experiment_file import load_experiment_file, module_problem
from chaoskit.kit import registry
from chaoskit.kit.documents import read_json_or_yaml
from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.lock import TargetLock
from chaoskit.kit.settings import RunSettings, run_variables
from chaoskit.testbed.lifecycle import is_up, orphaned, testbed_down, testbed_up
from chaoskit.testbed.state import read_state, target_lock_path
from chaoskit.verification.control import JOURNAL_KEY

__all__ = [
    "StopSignals",
    "check_control_file",
    "held_target",
    "load_run_settings",
    "run_experiment_file",
    "unload_run_settings",
]


def _check_controls(controls: Any, where: str) -> None:
    if controls in (None, {}):
        return
    if not isinstance(controls, dict):
        raise KitError(f"{where}: give controls as an object of name to control")
    for name, control in controls.items():
        provider = (control or {}).get("provider") if isinstance(control, dict) else None
        if not isinstance(provider, dict):
            raise KitError(f"{where}: control {shown(name)} has no provider")
        problem = provider.get("type") == "python" and module_problem(provider.get("module"))
        if problem:
            raise KitError(f"{where}: control {shown(name)}: {problem}")


def check_control_file(path: Path) -> dict[str, Any]:
    """The global controls in `path` (`--control-file`), every one loadable; KitError
    says in one line what is wrong (Chaos Toolkit would print a traceback, or run
    without the control)."""
    where = f"--control-file {path}"
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise KitError(f"{where}: give a .json, .yaml or .yml file")
    declared = read_json_or_yaml(path, where)
    if not declared:
        raise KitError(f"{where}: it is empty: give an object of name to control")
    _check_controls(declared, where)
    return declared


def load_run_settings(settings_path: str | None, control_files: list[Path]) -> Settings:
    """The user's Chaos Toolkit settings, the global controls of `control_files` merged
    into its `controls` (a file's control wins over the settings' of the same name), as
    `chaos run` takes them; KitError names a file that does not parse or a control that
    cannot load, before anything runs."""
    settings: Settings = {}
    if settings_path and Path(settings_path).exists():
        settings = read_json_or_yaml(Path(settings_path), f"--settings {settings_path}") or {}
        if not isinstance(settings, dict):
            raise KitError(f"--settings {settings_path}: give a YAML mapping")
        _check_controls(settings.get("controls"), f"--settings {settings_path}")
    controls = dict(settings.get("controls") or {})
    for path in control_files:
        controls.update(check_control_file(path))
    if controls:
        settings["controls"] = controls
    return settings


def unload_run_settings() -> None:
    cleanup_global_controls()


class StopSignals:
    """SIGINT/SIGTERM between runs: stop after this one. During a run Chaos Toolkit
    handles them (it interrupts the run and plays the rollbacks)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.in_run = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signal.Signals(signum).name
        if self.in_run and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Chaos Toolkit turns it into an interrupted run


def run_experiment_file(
    path: Path,
    variables: dict[str, Any],
    secret_vars: dict[str, Any],
    settings: Settings,
    stop: StopSignals,
    handlers: list[RunEventHandler] | None = None,
) -> tuple[dict[str, Any], SignalRecorder]:
    """Run the experiment at `path` with `variables` layered over its configuration (the
    keys it declares through Chaos Toolkit, the kit's through `run_variables`); return
    its journal (the kit's section naming the file) and what signals it received.
    Rollbacks are always played, whatever `settings` say."""
    experiment = load_experiment_file(path)
    recorder = SignalRecorder()
    strategy = (experiment.get("runtime") or {}).get("hypothesis", {}).get("strategy", "default")
    runtime = {**(settings.get("runtime") or {}), "rollbacks": {"strategy": "always"}}
    # Chaos Toolkit unloads the global controls at the end of every run: load them
    # again for each one, or a game day's second run would go without them
    load_global_controls(settings)
    stop.in_run = True
    try:
        with run_variables(variables):
            journal = run_experiment(
                experiment,
                settings={**settings, "runtime": runtime},
                strategy=Strategy.from_string(strategy),
                # copies: chaoslib pops each declared key from the variables it is given
                experiment_vars=(dict(variables), dict(secret_vars)),
                event_handlers=[*(handlers or []), recorder],
            )
    finally:
        stop.in_run = False
    # which file ran, for readers of the journal outside its game day (a sweep's probe)
    journal.setdefault(JOURNAL_KEY, {})["experiment_file"] = str(path)
    return journal, recorder


@contextlib.contextmanager
def held_target(
    config_vars: dict[str, Any], owner: str, say: Callable[[str], None], testbed: bool = True
) -> Iterator[StopSignals]:
    """The target, held for a series of runs (a sweep, a verification, several sources of
    `chaos run`): its lock taken, the embedded testbed (unless `testbed` is false: no run
    uses it) brought up with the configured service when it is down, or taken over from
    a killed run, and taken down after; whatever is left running stopped at the end, and
    SIGINT/SIGTERM turned into a stop after the current run."""
    target = RunSettings.of(config_vars).target
    started = False
    with TargetLock(target_lock_path(target), owner), StopSignals() as stop:
        try:
            state = read_state()
            if testbed and target == "embedded" and (not is_up(state) or orphaned(state)):
                # a run's own control would stop a testbed it took over at its end
                say(
                    "starting the embedded testbed, kept up for these runs"
                    if not is_up(state)
                    else "taking over the embedded testbed a killed run "
                    "left up; it stops after these runs"
                )
                testbed_up(started_by=owner, configuration=config_vars)
                started = True
            yield stop
        finally:
            registry.stop_all()
            if started:
                testbed_down()
