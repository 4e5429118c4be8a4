"""The run's configuration, settled once, before anything else: the one place it is built.

From the experiment's configuration (as Chaos Toolkit resolved it), the run's var-files
and `--var`, the environment (`CHAOS_<KEY>`) and the kit's defaults, each key the kit
knows gets its value, converted and checked (see `chaoskit.kit.settings`, whose
`RunSettings` every room then reads with `RunSettings.of(configuration)`); and the
objects are checked by their rooms: the `service` (a system the kit can start), the
`stop_conditions` (over the kit's thresholds and, on the testbed, the embedded
profile's), the `expect` (a verdict a run may expect). A value that cannot be used is
refused with one line naming the environment variable or the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoslib.configuration import load_configuration
from chaoslib.types import Configuration, Experiment

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import (
    ConfigurationError,
    RunSettings,
    embedded_profile,
    take_kit_keys,
)
from chaoskit.testbed.system import check_startable, system_under_test
from chaoskit.verification.stop_conditions import settle_stop_conditions
from chaoskit.verification.verdict import EXPECT_HINT, EXPECTABLE

__all__ = ["ConfigurationError", "check_expect", "run_configuration", "settle_configuration"]


def _declared(experiment: Experiment) -> Mapping[str, Any]:
    return experiment.get("configuration") or {}


def check_expect(
    experiment: Experiment,
    configuration: Configuration,
    variables: Mapping[str, Any] | None = None,
) -> None:
    """The configuration's `expect` (CHAOS_EXPECT, a var-file's: `variables`, default the
    run's), when set, is a verdict a run may expect; empty text is unset.
    ConfigurationError names where it came from."""
    sources = take_kit_keys(configuration, _declared(experiment), variables)
    _check_expect(configuration, sources)


def _check_expect(configuration: Configuration, sources: Mapping[str, str]) -> None:
    value = configuration.get("expect")
    if value == "":
        configuration["expect"] = None
    elif value is not None and value not in EXPECTABLE:
        source = sources.get("expect")
        said = f"{source}={value!r}" if source else f"expect={value!r}"
        raise ConfigurationError(f"{said} is not a verdict to expect: {EXPECT_HINT}")


def _settle_system_under_test(configuration: Configuration, settings: RunSettings) -> dict:
    """The `service` checked (one the embedded testbed runs can be started), and what the
    failure chains expect of it: `database_phase` and `failure_exit_code`."""
    try:
        system = system_under_test(settings.service)
        if not settings.on_staging:  # staging runs its own
            check_startable(system, configuration)
    except KitError as error:
        raise ConfigurationError(str(error)) from None
    return {"database_phase": system.database_phase, "failure_exit_code": system.failure_exit_code}


def settle_configuration(
    experiment: Experiment,
    configuration: Configuration,
    variables: Mapping[str, Any] | None = None,
    environment: bool = True,
) -> RunSettings:
    """Settle `configuration` in place (see the module's docstring): the kit's keys the
    experiment leaves unset from `variables` (default: the run's, `run_variables`) and,
    with `environment`, from `CHAOS_<KEY>`. Returns the run's settings;
    ConfigurationError names the first value that cannot be used."""
    declared = _declared(experiment)
    sources = take_kit_keys(configuration, declared, variables, environment)
    _check_expect(configuration, sources)
    settings = RunSettings.settle(configuration, declared, sources)
    RunSettings.provide(configuration, _settle_system_under_test(configuration, settings))
    try:
        # a run's own thresholds go over the testbed's (its latency floor, say)
        testbed = None if settings.on_staging else embedded_profile()["stop_conditions"]
        settle_stop_conditions(configuration, testbed)
    except KitError as error:
        raise ConfigurationError(str(error)) from None
    return RunSettings.of(configuration)


def run_configuration(
    experiment: Experiment, variables: Mapping[str, Any], environment: bool = True
) -> Configuration:
    """The configuration a run of `experiment` with `variables` (a profile's, a suite's,
    a sweep's) would have once settled, as Chaos Toolkit and the kit's control build it;
    KitError (or chaoslib's own) for a value that cannot be used."""
    # copies: chaoslib pops the keys it uses from the variables it is given
    configuration = load_configuration(dict(_declared(experiment)), dict(variables))
    settle_configuration(experiment, configuration, variables, environment)
    return configuration
