"""The shipped experiments stay consistent with each other and short enough to read: what
one declares the way every one does, a user who copies one to write another gets the
same controls, runtime, steady state and overridable settings; the keys the kit knows
are written once, in the kit, not in every experiment."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chaoskit.kit.settings import KIT_KEYS, SETTABLE_KEYS, RunSettings
from tests.conftest import REPO

EXPERIMENTS = sorted((REPO / "experiments").glob("*.json"))
REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\}")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _starts_and_stops(experiment: dict[str, Any]) -> tuple[set[tuple], set[tuple]]:
    """(what the method starts, what the rollbacks stop), by kind and name."""
    pairs = {
        "start_connection_flood": "stop_connection_flood",
        "start_service_instance": "stop_service_instance",
        "start_cpu_pressure": "stop_cpu_pressure",
        "start_lock_pressure": "stop_lock_pressure",
    }
    started = {
        (pairs[a["provider"]["func"]], (a["provider"].get("arguments") or {}).get("name"))
        for a in experiment["method"]
        if a["provider"]["func"] in pairs
    }
    stopped = {
        (a["provider"]["func"], (a["provider"].get("arguments") or {}).get("name"))
        for a in experiment.get("rollbacks", [])
    }
    return started, stopped


def test_every_experiment_shares_controls_runtime_and_steady_state() -> None:
    first, *rest = [_load(path) for path in EXPERIMENTS]
    for path, experiment in zip(EXPERIMENTS[1:], rest, strict=True):
        for key in ("controls", "runtime", "steady-state-hypothesis"):
            assert experiment[key] == first[key], f"{path.name}: {key} differs"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_setting_is_declared_once_and_overridable(path: Path) -> None:
    experiment = _load(path)
    configuration = experiment.get("configuration") or {}
    kit = RunSettings.of({})  # the kit's own values, each written once
    for key, declaration in configuration.items():
        # the experiment's own knob: CHAOS_<KEY> and a var-file set it, over its value
        assert declaration["key"] == f"CHAOS_{key.upper()}", f"{path.name}: {key}"
        assert declaration["default"] is not None, f"{path.name}: {key} has no value"
        if key in SETTABLE_KEYS:  # a value the kit already has is not written again
            assert declaration["default"] != kit.value(key), f"{path.name}: {key} repeats it"
    used = set(
        REFERENCE.findall(json.dumps({k: v for k, v in experiment.items() if k != "configuration"}))
    )
    known = set(configuration) | KIT_KEYS
    assert used <= known, f"{path.name}: {sorted(used - known)}"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_reads_in_a_minute_and_undoes_what_it_starts(path: Path) -> None:
    lines = path.read_text().splitlines()
    first_action = next(n for n, line in enumerate(lines, 1) if '"type": "action"' in line)
    assert first_action <= 60 and len(lines) <= 120, (path.name, first_action, len(lines))
    experiment = _load(path)
    started, stopped = _starts_and_stops(experiment)
    assert started <= stopped, f"{path.name}: no rollback for {sorted(started - stopped)}"
    names = {a["name"] for a in experiment["method"]}
    extension = next(e for e in experiment["extensions"] if e["name"] == "startup-chaos-kit")
    for expectation in extension.get("expectations", []):
        observed = [expectation.get("observe")]
        observed += (
            expectation.get("observe_seconds_between") or expectation.get("observe_ratio") or []
        )
        for path_ in filter(None, observed):
            assert path_.split(".")[0] in names, (path.name, expectation["name"])
