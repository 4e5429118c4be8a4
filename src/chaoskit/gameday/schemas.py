"""JSON Schemas of what a team writes for the kit, so that an editor completes and flags
it: an experiment's `startup-chaos-kit` extension, a game-day suite (gameday.toml, as
JSON Schema for TOML) and a profile (a var-file's `configuration`, its `service`).

Each is made from the tables the kit's own checks use (the keys they accept, their
ranges, the verdicts, causes, chains and formats they know), so the schemas and the
checks cannot drift apart: `python -m chaoskit.gameday.schemas schemas/` (`make
schemas`) writes them, and a test holds the published files to what this module makes.
The kit's checks stay the judge (they check what no schema can: an expectation's
activities, a var's experiment); a schema flags, before any command runs, what they
would refuse.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

# the tables the kit's checks read, private ones among them (read here, and nowhere else
# outside their modules: a schema is made of what the checks accept)
from chaoskit.gameday.suite import (
    DEFAULT_TIME_LIMIT_MIN,
    EXPERIMENT_KEYS,
    HEADER_KEYS,
    MAX_TIME_LIMIT_MIN,
    ON_FAILURE,
    SUITE_KEYS,
)
from chaoskit.kit.errors import KitError
from chaoskit.kit.failures import CAUSES
from chaoskit.kit.settings import value_schemas
from chaoskit.kit.var_files import _SECTIONS as SECTIONS
from chaoskit.targets.deployment import TARGETS
from chaoskit.testbed.startup_log import _PATTERNS as PATTERNS
from chaoskit.testbed.startup_log import FORMATS
from chaoskit.testbed.system import _FIELDS as SERVICE_FIELDS
from chaoskit.testbed.system import _READY_TIMEOUT_MAX_S as READY_TIMEOUT_MAX_S
from chaoskit.verification.chains import _FIELDS as CHAIN_FIELDS
from chaoskit.verification.chains import CHAINS
from chaoskit.verification.expectations import _OBSERVERS as OBSERVERS
from chaoskit.verification.expectations import KINDS
from chaoskit.verification.extension import _KEYS as EXTENSION_KEYS
from chaoskit.verification.extension import _SETTINGS as EXTENSION_SETTINGS
from chaoskit.verification.extension import EXTENSION
from chaoskit.verification.guardrails import _LIMIT_BOUNDS as LIMIT_BOUNDS
from chaoskit.verification.guardrails import DEFAULT_LIMITS
from chaoskit.verification.knobs import _FIELDS as KNOB_FIELDS
from chaoskit.verification.stop_conditions import _FIELD_RANGES as FIELD_RANGES
from chaoskit.verification.stop_conditions import _KINDS as CONDITION_KINDS
from chaoskit.verification.stop_conditions import _NAME as CONDITION_NAME
from chaoskit.verification.stop_conditions import _RANGES as RANGES
from chaoskit.verification.stop_conditions import _RESOURCES as RESOURCES
from chaoskit.verification.stop_conditions import DEFAULTS, check_stop_conditions
from chaoskit.verification.verdict import EXPECTABLE

__all__ = ["SCHEMAS", "experiment_schema", "profile_schema", "suite_schema", "write_schemas"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
# names, not addresses: an editor is pointed at the file (docs/game-days-and-reports.md)
_ID = "urn:chaostoolkit-startup-chaos-kit:schema:"
_PLAIN_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def _object(properties: dict[str, Any], keys: Collection[str] | None = None, **more: Any) -> dict:
    """A closed object of `properties`; `keys`, when given, the code's table of the keys
    it accepts, which they must be."""
    if keys is not None and set(keys) != set(properties):
        raise ValueError(
            f"the schema's keys {sorted(properties)} are not the code's {sorted(keys)}"
        )
    return {"type": "object", "properties": properties, "additionalProperties": False, **more}


def _number(low: float, high: float, description: str, whole: bool = False) -> dict:
    return {
        "type": "integer" if whole else "number",
        "minimum": low,
        "maximum": high,
        "description": description,
    }


def _expect() -> dict:
    return {
        "enum": list(EXPECTABLE),
        "description": "The verdict a run passes on: "
        "`reproduced` while the incident reproduces, `tolerated` once a fix holds.",
    }


def _guardrails() -> dict:
    limits = {}
    for key, default in DEFAULT_LIMITS.items():
        if key == "allowed_targets":
            limits[key] = {
                "type": "array",
                "items": {"type": "string", "pattern": r"\S"},
                "description": "Database hosts, beyond loopback, a run may load.",
            }
            continue
        low, high = LIMIT_BOUNDS[key]
        seconds = key.endswith("_s")
        limits[key] = _number(
            low, high, f"Default {default}" + (" s." if seconds else "."), whole=not seconds
        )
    return _object(
        limits,
        tuple(DEFAULT_LIMITS),
        description="The blast radius's limits (the kit's defaults, raised or lowered).",
    )


def _may_be_off(condition: str) -> bool:
    """Whether the stop condition may be null (turned off), as the kit's check says."""
    try:
        check_stop_conditions({condition: None})
    except KitError:
        return False
    return True


def _own_conditions(kind: str) -> dict:
    """A team's own stop conditions of one kind: a list of named entries (null: none)."""
    required, optional, example = CONDITION_KINDS[kind]
    fields: dict[str, Any] = {
        "name": {
            "type": "string",
            "pattern": CONDITION_NAME.pattern,
            "description": "Names the condition in the journal and on the report.",
        },
        "every_s": _number(*RANGES["every_s"][:2], "Seconds between two samples."),
    }
    if kind == "probes":
        fields["probe"] = {
            "type": "object",
            "required": ["type", "name", "provider", "tolerance"],
            "description": "A Chaos Toolkit probe with its tolerance: outside it, the run stops.",
        }
    if kind in RESOURCES:
        field, pattern, form = RESOURCES[kind]
        fields[field] = {"type": "string", "pattern": pattern.pattern, "description": form}
    for (of, field), (low, high, unit, whole) in FIELD_RANGES.items():
        if of == kind:
            fields[field] = _number(low, high, unit, whole=whole)
    entry = _object(fields, (*required, *optional), required=list(required))
    return {"type": ["array", "null"], "items": entry, "description": f"e.g. [{example}]"}


def _stop_conditions() -> dict:
    thresholds = {kind: _own_conditions(kind) for kind in CONDITION_KINDS}
    for key, (low, high, unit) in RANGES.items():
        threshold = _number(
            low,
            high,
            f"{unit}; default {DEFAULTS[key]}",
            whole=isinstance(low, int) and isinstance(high, int),
        )
        if _may_be_off(key):
            threshold["type"] = [threshold["type"], "null"]
            threshold["description"] += "; null turns it off"
        thresholds[key] = threshold
    return _object(
        thresholds,
        tuple(DEFAULTS),
        description="Thresholds over the target's "
        "own signals that stop a run while its method runs.",
    )


def _expectation(named: bool) -> dict:
    reference = {"type": "string", "minLength": 1, "description": "activity.path"}
    pair = {"type": "array", "items": reference, "minItems": 2, "maxItems": 2}
    observers = {"observe": reference, "observe_seconds_between": pair, "observe_ratio": pair}
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "step": {
                "type": "integer",
                "minimum": 1,
                "maximum": 6,
                "description": "The failure chain's step, 1 to 6.",
            },
            "kind": {"enum": list(KINDS)},
            **{key: observers[key] for key in OBSERVERS},
            "expect": {
                "type": ["string", "number", "boolean"],
                "minLength": 1,
                "description": 'An operator and a value, e.g. "== timeout".',
            },
        },
        "required": ["name", "expect"] if named else ["expect"],
        "oneOf": [{"required": [key]} for key in OBSERVERS],
    }
    return schema


def _knob() -> dict:
    properties = {
        "pressure": {"enum": ["up", "down"], "description": "Which way more pressure lies."},
        "range": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 2,
            "maxItems": 2,
            "description": "[low, high], worth sweeping.",
        },
        "unit": {"type": "string"},
        "resolution": {"type": "number", "exclusiveMinimum": 0},
    }
    return _object(properties, KNOB_FIELDS, required=["pressure", "range"])


def _extension() -> dict:
    chain = {
        "name": {"enum": list(CHAINS)},
        "startup": {
            "type": "string",
            "minLength": 1,
            "description": "The activity whose output is the startup report.",
        },
        "cause": {"enum": list(CAUSES)},
    }
    properties = {
        "name": {"const": EXTENSION},
        "chain": _object(chain, CHAIN_FIELDS, required=["name", "startup"]),
        "expectations": {"type": "array", "items": _expectation(named=True)},
        "startup": _expectation(named=False),
        "guardrails": _guardrails(),
        "stop_conditions": _stop_conditions(),
        "knobs": {"type": "object", "additionalProperties": _knob()},
        "expect": _expect(),
        **{key: _number(low, high, "Seconds.") for key, (low, high) in EXTENSION_SETTINGS.items()},
    }
    return _object(properties, EXTENSION_KEYS, required=["name"])


def experiment_schema() -> dict:
    """A Chaos Toolkit experiment, its `startup-chaos-kit` extension checked whole (the
    rest is Chaos Toolkit's to check: `chaos validate`)."""
    return {
        "$schema": _DRAFT,
        "$id": _ID + "experiment",
        "title": "Chaos Toolkit experiment with the Startup Chaos Kit's extension",
        "type": "object",
        "required": ["title", "description", "method"],  # as chaos validate requires
        "properties": {
            "extensions": {
                "type": "array",
                "items": {
                    "if": {
                        "type": "object",
                        "properties": {"name": {"const": EXTENSION}},
                        "required": ["name"],
                    },
                    "then": {"$ref": "#/$defs/extension"},
                },
            },
        },
        "$defs": {"extension": _extension()},
    }


def suite_schema() -> dict:
    """A game-day suite (gameday.toml)."""
    header = {
        "name": {"type": "string", "description": "The game day's name; default: the file's."},
        "profile": {
            "type": "string",
            "description": "A var-file, relative to the suite; empty: the embedded testbed.",
        },
        "time_limit_min": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIME_LIMIT_MIN,
            "description": f"The whole game day's budget in minutes; default "
            f"{DEFAULT_TIME_LIMIT_MIN:g}.",
        },
        "on_failure": {
            "enum": list(ON_FAILURE),
            "description": "Go on to the next experiment, or stop, at a verdict not as expected.",
        },
    }
    experiment = {
        "name": {
            "type": "string",
            "pattern": _PLAIN_NAME,
            "not": {"const": "summary"},
            "description": "A plain name: it names the experiment's journal.",
        },
        "file": {
            "type": "string",
            "minLength": 1,
            "description": "The experiment file, relative to the suite.",
        },
        "expect": {**_expect(), "default": "reproduced"},
        "vars": {
            "type": "object",
            "description": "Configuration values over the profile's: "
            "each a configuration key its experiment declares, or one the kit knows.",
        },
    }
    suite = {
        "gameday": _object(header, HEADER_KEYS),
        "experiment": {
            "type": "array",
            "minItems": 1,
            "items": _object(experiment, EXPERIMENT_KEYS, required=["name", "file"]),
        },
    }
    return {
        "$schema": _DRAFT,
        "$id": _ID + "suite",
        "title": "Startup Chaos Kit game-day suite",
        **_object(suite, SUITE_KEYS, required=["experiment"]),
    }


def _service() -> dict:
    startup_log = {
        "type": "object",
        "required": ["format"],
        "properties": {
            "format": {"enum": list(FORMATS)},
            **{
                key: {"type": "string", "description": "A regular expression (Python re)."}
                for key in PATTERNS
            },
            "phases": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The service's phase names, in order.",
            },
            "causes": {
                "type": "object",
                "additionalProperties": {"enum": list(CAUSES)},
                "description": "A regular expression of its words to the kit's cause.",
            },
        },
        "if": {"properties": {"format": {"const": "regex"}}},
        "then": {"propertyNames": {"enum": ["format", *PATTERNS, "phases", "causes"]}},
        "else": {"propertyNames": {"const": "format"}},
    }
    ready = _object(
        {
            "http": {"type": "string", "pattern": "^/", "description": "A path answering 2xx."},
            "log": {
                "type": "string",
                "description": "A regular expression of the line it prints when up.",
            },
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": READY_TIMEOUT_MAX_S},
        },
        anyOf=[{"required": ["http"]}, {"required": ["log"]}],
    )
    fields = {
        "command": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "The argv that starts one instance; ${python} and "
            "${examples} are the kit's, ${port}, ${database_url}, ... each instance's.",
        },
        "cwd": {"type": "string", "description": "The folder it starts in."},
        "env": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
        "ready": ready,
        "startup_log": startup_log,
        "database_phase": {
            "type": "string",
            "minLength": 1,
            "description": "The phase that opens its pool (Phase 3).",
        },
        "failure_exit_code": {"type": "integer", "minimum": 1, "maximum": 255},
    }
    # empty: the kit's reference service
    return {
        **_object(fields, SERVICE_FIELDS),
        "anyOf": [{"maxProperties": 0}, {"required": ["command"]}],
    }


def profile_schema() -> dict:
    """A profile: a Chaos Toolkit var-file of configuration for the kit's experiments."""
    from_environment = {
        "type": "object",
        "required": ["type", "key"],
        "additionalProperties": False,
        "properties": {"type": {"const": "env"}, "key": {"type": "string"}, "default": {}},
    }
    # every key the kit knows, typed and bounded as its settings check it
    known = {
        key: {"anyOf": [schema, {"$ref": "#/$defs/env"}]} for key, schema in value_schemas().items()
    }
    gcp = {
        "type": "object",
        "properties": value_schemas(gcp=True),
        "description": "Google Cloud's settings (staging).",
    }
    configuration = {
        "type": "object",
        "properties": {
            **known,
            "target": {"enum": list(TARGETS)},
            "expect": _expect(),
            "service": _service(),
            "guardrails": _guardrails(),
            "stop_conditions": _stop_conditions(),
            "gcp": gcp,
        },
        "additionalProperties": True,  # any configuration key an experiment declares
    }
    sections = {
        "configuration": {"$ref": "#/$defs/configuration"},
        "secrets": {"type": "object"},
        "about": {
            "type": "object",
            "description": "Read by nobody: what the profile is, for whoever reads it.",
        },
    }
    return {
        "$schema": _DRAFT,
        "$id": _ID + "profile",
        "title": "Startup Chaos Kit profile (a Chaos Toolkit var-file)",
        **_object(sections, SECTIONS),
        "$defs": {"configuration": configuration, "env": from_environment},
    }


SCHEMAS = {
    "experiment.schema.json": experiment_schema,
    "suite.schema.json": suite_schema,
    "profile.schema.json": profile_schema,
}


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SCHEMAS.items():
        path = folder / name
        path.write_text(json.dumps(make(), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
