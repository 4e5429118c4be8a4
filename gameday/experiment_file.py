"""Loading an experiment file the way the kit's own commands do (game days, sweeps):
whatever is wrong with it (it does not parse, it is not an object, Chaos Toolkit or the
kit finds it invalid) is one line naming the file, never a loader's traceback."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.types import Experiment

from chaoskit.kit.errors import KitError

__all__ = ["ExperimentFileError", "load_experiment_file"]


class ExperimentFileError(KitError):
    """An experiment file cannot be run; the message names it and why."""


def load_experiment_file(path: Path) -> Experiment:
    """The experiment in `path` (JSON or YAML), valid for Chaos Toolkit and the kit."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ExperimentFileError(f"{path}: no such experiment file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ExperimentFileError(f"{path}: cannot be read ({type(error).__name__})") from None
    try:
        parse = yaml.safe_load if path.suffix in (".yaml", ".yml") else json.loads
        experiment = parse(text)
    except json.JSONDecodeError as error:
        raise ExperimentFileError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}): partial or corrupt"
        ) from None
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0]
        raise ExperimentFileError(f"{path}: not valid YAML ({reason})") from None
    if not isinstance(experiment, dict) or not experiment:
        raise ExperimentFileError(f"{path}: not an experiment: give a JSON object")
    try:
        ensure_experiment_is_valid(experiment)
    except (ChaosException, KitError) as error:
        raise ExperimentFileError(f"{path}: {error}") from None
    return experiment
