"""Loading an experiment file the way the kit's own commands do (game days, sweeps,
`chaos run` and `chaos validate`): whatever is wrong with it (it does not parse, it is
not an object, Chaos Toolkit or the kit finds it invalid) is one line naming the file,
never a loader's traceback."""

from __future__ import annotations

from pathlib import Path

from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.types import Experiment

from chaoskit.kit.documents import read_json_or_yaml
from chaoskit.kit.errors import KitError

__all__ = ["EXPERIMENT_SUFFIXES", "ExperimentFileError", "load_experiment_file", "read_experiment"]

# what Chaos Toolkit's loader reads
EXPERIMENT_SUFFIXES = (".json", ".yaml", ".yml")


class ExperimentFileError(KitError):
    """An experiment file cannot be run; the message names it and why."""


def read_experiment(path: Path) -> Experiment:
    """The experiment in `path` (JSON or YAML) as written, not yet validated:
    ExperimentFileError when there is none, or it does not parse into an object."""
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
    return experiment


def load_experiment_file(path: Path) -> Experiment:
    """The experiment in `path` (JSON or YAML), valid for Chaos Toolkit and the kit."""
    experiment = read_experiment(path)
    try:
        ensure_experiment_is_valid(experiment)
    except (ChaosException, KitError) as error:
        raise ExperimentFileError(f"{path}: {error}") from None
    return experiment
