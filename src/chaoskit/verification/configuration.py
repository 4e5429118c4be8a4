"""The run's configuration, settled before anything else: the kit's defaults for keys
left unset, values from the environment converted to their types, every value checked.

Experiments declare the shared keys as `{"type": "env", "key": "CHAOS_<KEY>", "default":
null}`: a var-file or the environment variable sets them; left unset, they take the
embedded testbed's compressed-time figures (`testbed/embedded-profile.json`), written
once for every experiment. A value that is not of its key's type, not finite, negative,
or a duration longer than a day is refused with one line naming the environment
variable or the key; so is an `expect` that is no verdict a run may expect.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from chaoslib.types import Configuration, Experiment

from chaoskit.kit.documents import json_text
from chaoskit.kit.errors import KitError, shown
from chaoskit.targets.deployment import unfold_gcp_settings
from chaoskit.testbed.control import CAPACITY_KEYS, capacity_problem
from chaoskit.testbed.profile import embedded_profile
from chaoskit.testbed.system import check_startable, system_under_test
from chaoskit.verification.stop_conditions import settle_stop_conditions
from chaoskit.verification.verdict import EXPECT_HINT, EXPECTABLE

__all__ = ["MAX_DURATION_S", "ConfigurationError", "check_expect", "settle_configuration"]

# no duration of a run is longer than a day: a 1e300 s wait is no wait at all
MAX_DURATION_S = 86_400.0

_TYPES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
# the capacity stand-ins no profile sets (the testbed keeps its own unless a run asks):
# their type, for values that come as text from the environment, is a whole number
_UNSET_BY_DEFAULT = {key: low for key, (low, _) in CAPACITY_KEYS.items()}


class ConfigurationError(KitError):
    """A configuration value cannot be used; the message names where it came from."""


def _source(experiment: Experiment, key: str) -> str:
    """`CHAOS_<KEY>=...` when the value came from the environment, else the key."""
    declaration = (experiment.get("configuration") or {}).get(key)
    if isinstance(declaration, dict) and declaration.get("type") == "env":
        variable = declaration.get("key")
        if variable in os.environ:
            return f"{variable}={shown(os.environ[variable])}"
    return key


def _converted(value: Any, kind: type, source: str, example: Any) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                return text.lower() == "true"
            return kind(text)
        except ValueError:
            said = source if "=" in source else f"{source}: {shown(value)}"  # the value, once
            raise ConfigurationError(
                f"{said} is not {_TYPES[kind]}: give e.g. {json.dumps(example)}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigurationError(
            f"{source}: {shown(value)} is not {_TYPES[kind]}: give e.g. {json.dumps(example)}"
        )
    return value


def _check(key: str, value: Any, source: str) -> None:
    said = source if "=" in source else f"{source}={shown(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{said} is not a finite number: give a real figure")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        unit = "seconds" if key.endswith("_s") else "a count"
        raise ConfigurationError(f"{said} is negative: give {unit}, 0 or more")
    if key.endswith("_s") and isinstance(value, int | float) and value > MAX_DURATION_S:
        raise ConfigurationError(
            f"{said} is longer than a day: give seconds, at most {MAX_DURATION_S:g}"
        )


def _example(declaration: Any, default: Any) -> Any:
    """The key's declared default, else the embedded profile's: its type is the key's."""
    if isinstance(declaration, dict) and declaration.get("type") == "env":
        declaration = declaration.get("default")
    for value in (declaration, default):
        if value is not None and not isinstance(value, dict | list) and value != "":
            return value
    return None


def _settle_system_under_test(configuration: Configuration) -> None:
    """Check the `service` (a JSON text from CHAOS_SERVICE is read), and provide what the
    failure chains expect of it: `database_phase` and `failure_exit_code`."""
    try:
        service = json_text(configuration.get("service"), "service (CHAOS_SERVICE)",
                            "give the object, or use a var-file such as "
                            "experiments/profiles/example-service.json")  # fmt: skip
    except KitError as error:
        raise ConfigurationError(str(error)) from None
    configuration["service"] = service
    system = system_under_test(service)
    if configuration.get("target") in (None, "", "embedded"):  # staging runs its own
        check_startable(system, configuration)
    configuration["database_phase"] = system.database_phase
    configuration["failure_exit_code"] = system.failure_exit_code


def check_expect(experiment: Experiment, configuration: Configuration) -> None:
    """The configuration's `expect` (CHAOS_EXPECT, a var-file), when set, is a verdict a
    run may expect; empty text is unset. ConfigurationError names where it came from."""
    value = configuration.get("expect")
    if value == "":
        configuration["expect"] = None
    elif value is not None and value not in EXPECTABLE:
        source = _source(experiment, "expect")
        shown = source if source != "expect" else f"expect={value!r}"
        raise ConfigurationError(f"{shown} is not a verdict to expect: {EXPECT_HINT}")


def settle_configuration(experiment: Experiment, configuration: Configuration) -> None:
    """Fill, convert and check `configuration` in place (see the module's docstring);
    ConfigurationError names the first value that cannot be used."""
    unfold_gcp_settings(configuration)
    defaults = embedded_profile()
    for key, default in defaults.items():
        if configuration.get(key) is None:
            configuration[key] = default
    declared = experiment.get("configuration") or {}
    check_expect(experiment, configuration)
    _settle_system_under_test(configuration)
    try:
        # a run's own thresholds go over the testbed's (its latency floor, say)
        embedded = configuration.get("target") in (None, "", "embedded")
        settle_stop_conditions(configuration, defaults["stop_conditions"] if embedded else None)
    except KitError as error:
        raise ConfigurationError(str(error)) from None
    for key in set(declared) | set(defaults):
        example = _example(declared.get(key), defaults.get(key))
        if example is None:  # a declared 0 or false is a type all the same
            example = _UNSET_BY_DEFAULT.get(key)
        if example is None or configuration.get(key) is None:
            continue
        source = _source(experiment, key)
        value = _converted(configuration[key], type(example), source, example)
        _check(key, value, source)
        if key in CAPACITY_KEYS and (problem := capacity_problem(key, value)):
            raise ConfigurationError(problem)
        configuration[key] = value
