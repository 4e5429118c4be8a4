"""Named failure chains: the outcome an experiment declares by name instead of by seven
expectations written out again in every file.

An experiment's extension says `"chain": {"name": "phase3-timeout", "startup":
"observe-fresh-instance-startup", "cause": "too_many_connections"}`; the chain expands to
its expectations on that activity's output, and says what counts as the startup having
succeeded (the run is then `tolerated`).
"""

from __future__ import annotations

from typing import Any

from chaoskit.kit.errors import KitError, shown

__all__ = ["CHAINS", "expand_chain"]

# {startup} is the activity whose output is the startup report; {cause}, when given, the
# cause the failed phase must report. The system under test says which phase is its
# database phase and how it exits when its startup fails (`${database_phase}`,
# `${failure_exit_code}`: the reference service's "database" and 3)
CHAINS: dict[str, dict[str, Any]] = {
    "phase3-timeout": {
        "about": "a fresh instance's database phase (the reference service's Phase 3) times "
        "out, the phases after it are blocked, the lifespan reports startup_failed and the "
        "process exits with the service's failure exit code (the reference service's 3)",
        "startup": {"observe": "{startup}.ready", "expect": "== true"},
        "expectations": [
            {
                "name": "phase3_timeout",
                "step": 3,
                "observe": "{startup}.failed_phase.status",
                "expect": "== timeout",
            },
            {
                "name": "phase3_is_database",
                "step": 3,
                "observe": "{startup}.failed_phase.name",
                "expect": "== ${{database_phase}}",
            },
            {
                "name": "phase3_cause",
                "step": 3,
                "observe": "{startup}.failed_phase.cause",
                "expect": "== {cause}",
                "needs": "cause",
            },
            {
                "name": "lifespan_startup_failed",
                "step": 4,
                "observe": "{startup}.startup_failed",
                "expect": "== true",
            },
            {
                "name": "later_phases_blocked",
                "step": 4,
                "observe": "{startup}.phases_after_failure",
                "expect": "all == blocked",
            },
            {
                "name": "failure_exit_code",
                "step": 5,
                "observe": "{startup}.exit_code",
                "expect": "== ${{failure_exit_code}}",
            },
            {
                "name": "fresh_instance_offline",
                "step": 6,
                "observe": "{startup}.ready",
                "expect": "== false",
            },
        ],
    },
    "every-start-exits-3": {
        "about": "every one of repeated fresh starts breaks its lifespan and exits with the "
        "service's failure exit code (the reference service's 3)",
        "startup": {"observe_ratio": ["{startup}.ready", "{startup}.starts"], "expect": "== 1"},
        "expectations": [
            {
                "name": "every_lifespan_failed",
                "step": 4,
                "observe_ratio": ["{startup}.startup_failed", "{startup}.starts"],
                "expect": "== 1",
            },
            {
                "name": "every_failure_exit_code",
                "step": 5,
                "observe_ratio": ["{startup}.exited_as_declared", "{startup}.starts"],
                "expect": "== 1",
            },
            {"name": "none_started", "step": 6, "observe": "{startup}.ready", "expect": "== 0"},
        ],
    },
}

_FIELDS = ("name", "startup", "cause")


class ChainError(KitError):
    """The chain named in the extension is unknown or misses a parameter."""


def _fill(value: Any, parameters: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**parameters)
    if isinstance(value, list):
        return [_fill(v, parameters) for v in value]
    return value


def expand_chain(chain: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chain's expectations and its startup criterion, filled in with `chain`'s
    parameters; ChainError names what is wrong."""
    if not isinstance(chain, dict):
        raise ChainError('give an object, e.g. {"name": "phase3-timeout", "startup": "..."}')
    unknown = sorted(set(chain) - set(_FIELDS))
    if unknown:
        raise ChainError(f"unknown {', '.join(unknown)}: give {', '.join(_FIELDS)}")
    definition = CHAINS.get(chain.get("name"))
    if definition is None:
        raise ChainError(f"name {shown(chain.get('name'))}: use one of {', '.join(CHAINS)}")
    if not isinstance(chain.get("startup"), str) or not chain["startup"]:
        raise ChainError("startup: name the activity whose output is the startup report")
    parameters = {"startup": chain["startup"], "cause": chain.get("cause", "")}
    expectations = [
        {key: _fill(value, parameters) for key, value in expectation.items() if key != "needs"}
        for expectation in definition["expectations"]
        if expectation.get("needs") is None or chain.get(expectation["needs"])
    ]
    startup = {key: _fill(value, parameters) for key, value in definition["startup"].items()}
    return expectations, startup
