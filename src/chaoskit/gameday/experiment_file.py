"""Loading an experiment file the way the kit's own commands do (game days, sweeps, and
`chaos run` and `chaos validate` through the kit's plugin): whatever is wrong with it
(it does not parse, it is not an object, a control's module cannot be loaded, Chaos
Toolkit or the kit finds it invalid) is one line naming the file, never a loader's
traceback nor a run without its controls."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.types import Experiment

from chaoskit.kit.documents import read_json_or_yaml
from chaoskit.kit.errors import KitError, shown

__all__ = [
    "EXPERIMENT_SUFFIXES",
    "ExperimentFileError",
    "load_experiment_file",
    "module_problem",
    "read_experiment",
]

# what Chaos Toolkit's loader reads
EXPERIMENT_SUFFIXES = (".json", ".yaml", ".yml")
_KIT_CONTROLS = ("chaoskit.verification.control", "chaoskit.testbed.control")


class ExperimentFileError(KitError):
    """An experiment file cannot be run; the message names it and why."""


def module_problem(module: Any) -> str | None:
    """Why the Python module a control names cannot be loaded (None: it can), with the
    nearest of the kit's controls when it looks mistyped."""
    try:
        if isinstance(module, str) and importlib.util.find_spec(module) is not None:
            return None
    except (ImportError, ValueError):
        pass
    close = difflib.get_close_matches(str(module), _KIT_CONTROLS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"module {shown(module)} is not installed{hint}"


def read_experiment(path: Path) -> Experiment:
    """The experiment document in `path` (JSON or YAML), an object whose controls can all
    be loaded, not yet validated; one line naming the file when it is not (Chaos Toolkit
    would print a loader's traceback, or run without a control it cannot load)."""
    if not path.exists():
        raise ExperimentFileError(f"{path}: no such experiment file")
    if path.suffix not in EXPERIMENT_SUFFIXES:
        raise ExperimentFileError(f"{path}: give a .json, .yaml or .yml experiment file")
    try:
        experiment = read_json_or_yaml(path, str(path))
    except KitError as error:
        raise ExperimentFileError(str(error)) from None
    if not isinstance(experiment, dict) or not experiment:
        raise ExperimentFileError(f"{path}: not an experiment: give a JSON object")
    for where, control in _controls(experiment):
        provider = control.get("provider") if isinstance(control, dict) else None
        if isinstance(provider, dict) and provider.get("type") == "python":
            problem = module_problem(provider.get("module"))
            if problem:
                raise ExperimentFileError(f"{path}: {where}: {problem}")
    return experiment


def _controls(experiment: Experiment) -> list[tuple[str, Any]]:
    """Every control the experiment declares, where it declares it: its own, its steady
    state's, its activities' (a malformed part is Chaos Toolkit's validation's to name)."""

    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    hypothesis = mapping(experiment.get("steady-state-hypothesis"))
    places = [
        ("controls", experiment.get("controls")),
        ("steady-state-hypothesis.controls", hypothesis.get("controls")),
    ]
    for section in ("method", "rollbacks"):
        for i, activity in enumerate(listed(experiment.get(section))):
            places.append((f"{section}[{i}].controls", mapping(activity).get("controls")))
    return [
        (f"{where}[{i}]", c) for where, controls in places for i, c in enumerate(listed(controls))
    ]


def load_experiment_file(path: Path) -> Experiment:
    """The experiment in `path` (JSON or YAML), valid for Chaos Toolkit and the kit."""
    experiment = read_experiment(path)
    try:
        ensure_experiment_is_valid(experiment)
    except (ChaosException, KitError) as error:
        raise ExperimentFileError(f"{path}: {error}") from None
    return experiment
