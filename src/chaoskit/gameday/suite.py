"""The game-day suite file (TOML): which experiments, in which order, expecting what.

See `experiments/gameday.toml` for the format. Loading checks everything a run needs
before anything starts, and names the field at fault: files exist, verdicts are known,
names are unique plain names (they become file names), every var is a configuration key
its experiment declares, and each experiment's configuration (the profiles, then its
vars) settles as its run would settle it: types, finite and in range.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from chaoslib.exceptions import ChaosException
from chaoslib.types import Experiment

from chaoskit.gameday.experiment_file import load_experiment_file
from chaoskit.kit.errors import KitError, shown
from chaoskit.kit.settings import SETTABLE_KEYS, RunSettings
from chaoskit.kit.var_files import check_var_file
from chaoskit.verification.configuration import run_configuration
from chaoskit.verification.guardrails import check_limits
from chaoskit.verification.verdict import EXPECT_HINT, EXPECTABLE

__all__ = [
    "EXPERIMENT_KEYS",
    "HEADER_KEYS",
    "MAX_TIME_LIMIT_MIN",
    "ON_FAILURE",
    "SUITE_KEYS",
    "Suite",
    "SuiteError",
    "SuiteExperiment",
    "load_suite",
]

DEFAULT_TIME_LIMIT_MIN = 90.0
MAX_TIME_LIMIT_MIN = 24 * 60
# the keys a suite may have (its JSON Schema, schemas/suite.schema.json, is made of them)
SUITE_KEYS = ("gameday", "experiment")
HEADER_KEYS = ("name", "profile", "time_limit_min", "on_failure")
EXPERIMENT_KEYS = ("name", "file", "expect", "vars")
ON_FAILURE = ("continue", "stop")
# an experiment's name becomes its journal's file name: a plain name, not summary.json's
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TAKEN_NAMES = ("summary",)


class SuiteError(KitError):
    """The suite file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class SuiteExperiment:
    name: str
    path: Path
    expect: str
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    profiles: tuple[Path, ...]
    time_limit_s: float
    on_failure: str
    experiments: list[SuiteExperiment]

    def only(self, names: list[str]) -> Suite:
        """The suite restricted to `names`, in the suite's order."""
        unknown = sorted(set(names) - {e.name for e in self.experiments})
        if unknown:
            known = ", ".join(e.name for e in self.experiments)
            listed = ", ".join(unknown)
            raise SuiteError(f"--only {listed}: not in {self.path.name}; known: {known}")
        return replace(self, experiments=[e for e in self.experiments if e.name in names])


def _fail(path: Path, where: str, message: str) -> SuiteError:
    return SuiteError(f"{path}: {where}: {message}")


def _known(path: Path, where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _fail(path, f"{where}{key}", f"unknown key{hint}; known: {', '.join(known)}")


def load_suite(path: Path, profiles: Sequence[Path] = ()) -> Suite:
    """Read and check the suite; `profiles` (var-files) are layered on the suite's own
    profile, later ones winning."""
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file (give one with --suite)") from None
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML: {error}") from None
    base = path.parent
    _known(path, "", document, SUITE_KEYS)
    header = document.get("gameday", {})
    if not isinstance(header, dict):
        raise _fail(path, "[gameday]", "must be a table")
    _known(path, "gameday.", header, HEADER_KEYS)
    on_failure = header.get("on_failure", "continue")
    if on_failure not in ON_FAILURE:
        raise _fail(path, "gameday.on_failure", f"{shown(on_failure)}: use 'continue' or 'stop'")
    limit = header.get("time_limit_min", DEFAULT_TIME_LIMIT_MIN)
    if (
        not isinstance(limit, int | float)
        or isinstance(limit, bool)
        or not 0 < limit <= MAX_TIME_LIMIT_MIN
    ):
        raise _fail(path, "gameday.time_limit_min", f"{shown(limit)}: give minutes, from 1 to 1440")
    if header.get("profile"):
        profiles = [base / header["profile"], *profiles]
    for profile in profiles:
        if not profile.is_file():
            raise _fail(path, "profile", f"{profile} does not exist")
        try:
            check_var_file(profile)
        except KitError as error:
            raise _fail(path, "profile", str(error)) from None
    profile_vars = _profile_vars(path, profiles)

    entries = document.get("experiment", [])
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "[[experiment]]", "list at least one experiment")
    experiments, seen = [], set()
    for index, entry in enumerate(entries):
        where = f"experiment[{index}]"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("file"):
            raise _fail(path, where, "give `name` and `file`")
        _known(path, f"{where}.", entry, EXPERIMENT_KEYS)
        name = entry["name"]
        if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name) or name in _TAKEN_NAMES:
            raise _fail(
                path,
                f"{where}.name",
                f"{shown(name)}: give a plain name (letters, "
                "digits, ., _ and -; not summary): it names its journal",
            )
        if name in seen:
            raise _fail(path, f"{where}.name", f"{shown(name)} appears twice")
        seen.add(name)
        if not isinstance(entry["file"], str):
            raise _fail(path, f"{where}.file", f"{shown(entry['file'])}: give a file's path")
        file = base / entry["file"]
        if not file.is_file():
            raise _fail(path, f"{where}.file", f"{file} does not exist")
        try:
            experiment = load_experiment_file(file)
        except KitError as error:
            raise _fail(path, f"{where}.file", str(error)) from None
        expect = entry.get("expect", "reproduced")
        if expect not in EXPECTABLE:
            raise _fail(path, f"{where}.expect", f"{shown(expect)}: {EXPECT_HINT}")
        variables = entry.get("vars", {})
        if not isinstance(variables, dict):
            raise _fail(path, f"{where}.vars", "must be a table of configuration values")
        _check_vars(path, where, experiment, profile_vars, variables)
        experiments.append(SuiteExperiment(name, file, expect, variables))
    return Suite(
        path,
        str(header.get("name", path.stem)),
        tuple(profiles),
        float(limit) * 60.0,
        on_failure,
        experiments,
    )


def _profile_vars(path: Path, profiles: Sequence[Path]) -> dict[str, Any]:
    """The configuration the profiles give every experiment, its guardrails and target
    checked (they become limits and a lock file's name)."""
    config_vars, _ = merge_vars({}, [str(p) for p in profiles])
    try:
        check_limits(RunSettings.of(config_vars).guardrails, "guardrails")
    except KitError as error:
        raise _fail(path, "profile", str(error)) from None
    return config_vars


def _check_vars(
    path: Path,
    where: str,
    experiment: Experiment,
    profile_vars: dict[str, Any],
    variables: dict[str, Any],
) -> None:
    """Every var a configuration key of the experiment or one the kit knows (a misspelt
    one would be dropped silently), and the experiment's configuration, profiles and
    vars over it, settled as its run would settle it."""
    known = [*(experiment.get("configuration") or {}), *SETTABLE_KEYS]
    for key in variables:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _fail(
                path,
                f"{where}.vars.{key[:60]}",
                f"not a configuration key of its experiment{hint}: it would be dropped",
            )
    try:
        declared = _unset_as_none(experiment.get("configuration") or {})
        configuration = run_configuration(
            {**experiment, "configuration": declared},
            _unset_as_none({**profile_vars, **variables}),
        )
        check_limits(RunSettings.of(configuration).guardrails, "guardrails")
    except (KitError, ChaosException) as error:
        raise _fail(path, f"{where} (its profiles and vars)", str(error)) from None


def _unset_as_none(values: dict[str, Any]) -> dict[str, Any]:
    """`values`, an environment variable they name that is unset and has no default (a
    secret given where the game day runs) as None: the preflight says which is missing."""
    return {
        key: None
        if isinstance(value, dict)
        and value.get("type") == "env"
        and "default" not in value
        and value.get("key") not in os.environ
        else value
        for key, value in values.items()
    }
