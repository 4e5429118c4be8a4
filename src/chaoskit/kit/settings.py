"""The run's configuration, typed: the one object every room reads, `RunSettings.of(configuration)`.

Chaos Toolkit hands controls and activities the run's configuration as a dict, and
substitutes `${key}` in activity arguments from it. The kit's control settles that dict
once, before anything runs (`chaoskit.verification.configuration`): every key the kit
knows gets its value, converted to its type and checked, written back into the dict
(so that `${key}` carries it), and the `RunSettings` built from it is kept inside it
for every room to read. Where a value comes from, the first that has it:

1. the experiment's own configuration, as Chaos Toolkit resolved it (its declarations
   read the run's var-files, `--var` and environment variables);
2. for a key the kit knows (`KIT_KEYS`, which no experiment needs to declare): the
   run's var-files and `--var` (`run_variables`: `chaos run`, game days, sweeps and
   verifications say which), then the environment variable `CHAOS_<KEY>`;
3. its default, written once: the embedded testbed's compressed time for the figures
   it holds (`src/chaoskit/testbed/embedded-profile.json`, a var-file), else the
   field's own below (Google Cloud's clock in `GcpSettings`).

A value that is not of its key's type, not a finite number, negative, a duration
longer than a day, or a capacity outside its range is refused in one line naming the
environment variable or the key and the fix (`CHAOS_POOL_SIZE='abc' is not a whole
number: give e.g. 5`); so is the experiment's own knob, typed by its declared default.
The objects (`service`, `guardrails`, `stop_conditions`) are checked by their rooms as
the run settles; `gcp` is typed here.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from chaoskit.kit.documents import json_text
from chaoskit.kit.errors import KitError, shown

__all__ = [
    "DAY_S",
    "EMBEDDED_PROFILE",
    "KIT_KEYS",
    "SETTABLE_KEYS",
    "TARGETS",
    "ConfigurationError",
    "GcpSettings",
    "RunSettings",
    "embedded_profile",
    "environment_variable",
    "run_variables",
    "take_kit_keys",
    "value_schemas",
]

# no duration of a run is longer than a day: a 1e300 s wait is no wait at all
DAY_S = 86_400.0
EMBEDDED_PROFILE = Path(__file__).resolve().parents[1] / "testbed" / "embedded-profile.json"
# where a settled configuration keeps its RunSettings (Chaos Toolkit substitutes only
# `${key}` forms of text, so an object here is never an activity's argument)
_SETTLED = "_startup_chaos_kit_settings"


def embedded_profile() -> dict[str, Any]:
    """The embedded testbed's compressed time: the profile's configuration, by key."""
    return json.loads(EMBEDDED_PROFILE.read_text())["configuration"]


_EMBEDDED = embedded_profile()


class ConfigurationError(KitError):
    """A configuration value cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class _Range:
    """A whole number from `low` to `high`: a value outside is refused as
    `<key>=<value>: give a whole number from <low> to <high>`."""

    low: int
    high: int

    @property
    def words(self) -> str:
        return f"a whole number from {self.low} to {self.high}"


@dataclass(frozen=True)
class _JsonObject:
    """The field is an object; text (an environment variable's) is read as JSON."""

    hint: str


class _Provided:
    """The kit's controls fill the field in during a run: no var-file or environment
    variable sets it."""


Seconds = Annotated[float, Field(ge=0, le=DAY_S, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Target = Literal["embedded", "staging"]
TARGETS: tuple[str, ...] = get_args(Target)


def _embedded(key: str) -> Any:
    """The field's default: the embedded profile's value, the one place it is written."""
    value = _EMBEDDED[key]
    if isinstance(value, dict | list):
        return Field(default_factory=lambda: json.loads(json.dumps(value)))
    return Field(default=value)


def _capacity(low: int, high: int) -> Any:
    return Annotated[int, Field(ge=low, le=high), _Range(low, high)]


class GcpSettings(BaseModel):
    """Google Cloud's settings (staging): the profile's `gcp` object, or `gcp_<name>`
    keys (which win, and which chaostoolkit-google-cloud-platform reads). The seconds
    are Google's clock as the kit assumes it; a rehearsal on a time scale divides them."""

    model_config = ConfigDict(extra="allow", frozen=True)

    project_id: str | None = None
    region: str | None = None
    cloud_run_service: str | None = None
    vpc_connector: str | None = None
    cloud_sql_instance: str | None = None
    cloud_sql_max_connections: Annotated[int, Field(ge=1)] | None = None
    flood_image: str | None = None
    flood_dsn_secret: str | None = None
    flood_service_account: str | None = None
    flood_connections_per_task: Annotated[int, Field(ge=1)] = 25
    # per API, where its requests go (an emulator, the tests' fakes)
    api_endpoints: dict[str, str] = Field(default_factory=dict)
    timeline_interval_s: Seconds = 30.0
    operation_poll_s: Seconds = 2.0
    operation_timeout_s: Seconds = 900.0
    log_poll_s: Seconds = 5.0  # log lines take seconds to reach Cloud Logging
    log_delay_s: Seconds = 30.0  # ...and may be listed after lines written later
    clock_skew_s: Seconds = 60.0  # this machine's clock may run ahead of Google's
    retry_s: Seconds = 1.0  # the backoff's first wait on 429 and 5xx
    retry_for_s: Seconds = 120.0  # ...and when it gives up
    # Monitoring samples each metric the kit reads every minute, and shows a point only
    # up to 165 s (Cloud SQL) or 180 s (the connector, Cloud Run) later
    metric_period_s: Seconds = 60.0
    metric_lag_s: Seconds = 180.0
    flood_task_start_s: Seconds = 120.0  # a job's task container is pulled and started


class RunSettings(BaseModel):
    """Every key the kit knows, typed; the experiment's own knobs are extras, typed by
    their declared defaults. Read it with `RunSettings.of(configuration)`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # where the run acts; the testbed's control fills in the endpoints left unset
    target: Target = _embedded("target")
    database_url: str | None = None  # through the connector, as the service reaches it
    direct_database_url: str | None = None  # straight to PostgreSQL
    admin_database_url: Annotated[str | None, _Provided()] = None  # a superuser's
    connector_url: str | None = None  # the connector model's control API
    service_url: str | None = None  # the long-running service
    # the system under test (empty: the reference service), checked by testbed.system
    service: Annotated[
        Any,
        _JsonObject(
            "give the object, or use a var-file such as experiments/profiles/example-service.json"
        ),
    ] = _embedded("service")
    # its startup
    initialization_timeout_s: Seconds = _embedded("initialization_timeout_s")
    connect_timeout_s: Seconds = _embedded("connect_timeout_s")
    pool_size: Count = _embedded("pool_size")
    max_overflow: Count = _embedded("max_overflow")
    pool_timeout_s: Seconds = _embedded("pool_timeout_s")
    connect_retry_s: Seconds = _embedded("connect_retry_s")
    schema_load_bytes: Count = _embedded("schema_load_bytes")
    # the run's waits
    startup_observe_timeout_s: Seconds = _embedded("startup_observe_timeout_s")
    recovery_timeout_s: Seconds = _embedded("recovery_timeout_s")
    sample_interval_s: Seconds = 0.5  # the timeline's, on the embedded testbed
    # pressure, and the thresholds it is judged by
    flood_hold_s: Seconds = _embedded("flood_hold_s")
    flood_connect_timeout_s: Seconds = _embedded("flood_connect_timeout_s")
    pressure_duration_s: Seconds = _embedded("pressure_duration_s")
    connector_threshold: Share = _embedded("connector_threshold")
    pool_threshold: Share = _embedded("pool_threshold")
    connect_delay_threshold_s: Seconds = _embedded("connect_delay_threshold_s")
    # stand-ins for the production capacity a remediation changes (None: the testbed's)
    database_max_connections: _capacity(5, 1000) | None = None
    connector_min_instances: _capacity(1, 100) | None = None
    # verification: the verdict the run passes on (checked by verification.verdict), the
    # blast radius's limits and the stop conditions (checked by their rooms)
    expect: str | None = None
    guardrails: Annotated[
        Any, _JsonObject('give an object such as {"max_database_connections": 150}')
    ] = Field(default_factory=dict)
    stop_conditions: Annotated[Any, _JsonObject('give an object such as {"error_rate_pct": 5}')] = (
        Field(default_factory=dict)
    )
    gcp: Annotated[GcpSettings, _JsonObject('give an object such as {"project_id": "..."}')] = (
        Field(default_factory=GcpSettings)
    )
    # what the kit's controls provide during the run
    service_application_name: Annotated[str | None, _Provided()] = None
    service_pool_capacity: Annotated[int | None, _Provided()] = None
    run_started_at: Annotated[float | None, _Provided()] = None
    baseline_reset: Annotated[list[str], _Provided()] = Field(default_factory=list)
    database_phase: Annotated[str, _Provided()] = "database"
    failure_exit_code: Annotated[int, _Provided()] = 3

    def __repr__(self) -> str:  # a log line never shows a database URL's password
        return f"RunSettings(target={self.target!r})"

    __str__ = __repr__

    @property
    def on_staging(self) -> bool:
        return self.target == "staging"

    def value(self, key: str) -> Any:
        """A key's value by name: a field, an experiment's knob, or `gcp_<name>`."""
        if key.startswith("gcp_") and key not in (self.model_extra or {}):
            return getattr(self.gcp, key[4:], None)
        return getattr(self, key, None)

    def given_or_configured(self, given: Any, *keys: str, argument: str, hint: str) -> Any:
        """`given` when it is set, else the first of `keys` that is set; ConfigurationError
        names `argument` and the keys, with `hint` saying who fills them in."""
        if given not in (None, ""):
            return given
        for key in keys:
            if self.value(key) not in (None, ""):
                return self.value(key)
        names = " or ".join(f"`{k}`" for k in keys)
        raise ConfigurationError(
            f"{argument} is not set: pass it, or set {names} in the configuration ({hint})"
        )

    def values(self) -> dict[str, Any]:
        """Every value by key, as `${key}` takes them (a service's command and
        environment): the fields, the knobs, and `gcp_<name>` for Google Cloud's."""
        values = {key: getattr(self, key) for key in type(self).model_fields if key != "gcp"}
        values.update(self.model_extra or {})
        values.update({f"gcp_{k}": v for k, v in self.gcp.model_dump().items()})
        return values

    @classmethod
    def of(cls, configuration: Mapping[str, Any] | None, readable: bool = False) -> RunSettings:
        """The run's settings: those its settlement kept in `configuration`; for one the
        kit has not settled (a profile's, an activity called on its own), its values
        over the kit's defaults, checked. ConfigurationError names a value that cannot
        be used; with `readable` (a run refused before it settled, whose journal is still
        written), such a value is left at its default instead."""
        configuration = configuration or {}
        settled = configuration.get(_SETTLED)
        if isinstance(settled, RunSettings):
            return settled
        return _build(_resolved(configuration), {}, {}, readable)

    @classmethod
    def settle(
        cls,
        configuration: dict[str, Any],
        declared: Mapping[str, Any],
        sources: Mapping[str, str],
    ) -> RunSettings:
        """Convert and check every value of `configuration` (the kit's keys, and those
        `declared` by the experiment with a default to type them by), write them back,
        and keep the settings in it; `sources` names the environment variable a value
        came from, for the refusal's line."""
        settings = _build(configuration, declared, sources)
        values = settings.values()
        written = settings.model_fields_set | set(SETTABLE_KEYS) | set(settings.model_extra or {})
        for key in written - {"gcp"}:
            configuration[key] = values[key]
        # Google Cloud's as given (not the kit's defaults), also as the `gcp_<name>` keys
        # chaostoolkit-google-cloud-platform reads
        gcp = settings.gcp.model_dump(exclude_unset=True)
        configuration["gcp"] = gcp
        configuration.update({f"gcp_{name}": value for name, value in gcp.items()})
        configuration[_SETTLED] = settings
        return settings

    @classmethod
    def provide(
        cls, configuration: dict[str, Any], values: Mapping[str, Any], fill_only: bool = False
    ) -> None:
        """What the kit's controls provide during a run (the testbed's endpoints, when
        the method started), into `configuration` and its settings; with `fill_only`,
        only where the configuration has no value."""
        for key, value in values.items():
            if not (fill_only and configuration.get(key)):
                configuration[key] = value
        settled = configuration.get(_SETTLED)
        if isinstance(settled, RunSettings):
            configuration[_SETTLED] = settled.model_copy(
                update={key: configuration[key] for key in values}
            )


_FIELDS: dict[str, FieldInfo] = RunSettings.model_fields
KIT_KEYS = frozenset(_FIELDS)
# the keys a var-file, `--var` or CHAOS_<KEY> sets, whether an experiment declares them
SETTABLE_KEYS = tuple(
    key for key, info in _FIELDS.items() if not any(isinstance(m, _Provided) for m in info.metadata)
)


def environment_variable(key: str) -> str:
    """The environment variable that sets `key`: `CHAOS_<KEY>`."""
    return f"CHAOS_{key.upper()}"


# --- where a run's values come from ---------------------------------------------------

_RUN_VARIABLES: ContextVar[Mapping[str, Any] | None] = ContextVar("run_variables", default=None)


@contextlib.contextmanager
def run_variables(variables: Mapping[str, Any]) -> Iterator[None]:
    """The configuration variables (var-files and `--var`, merged as Chaos Toolkit
    merges them) of the runs started inside: the kit takes from them the keys it knows
    that an experiment does not declare (Chaos Toolkit drops those)."""
    token = _RUN_VARIABLES.set(dict(variables))
    try:
        yield
    finally:
        _RUN_VARIABLES.reset(token)


def _from_environment(declaration: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A var-file's `{"type": "env", "key": ..., "default": ...}`, as Chaos Toolkit
    reads it: (value, the variable it came from, when set)."""
    variable = declaration.get("key")
    if isinstance(variable, str) and variable in os.environ:
        return os.environ[variable], variable
    if "default" not in declaration:
        raise ConfigurationError(
            f"{variable} is not set: the var-file's value reads it (set it, or give the "
            "key a value in the var-file)"
        )
    return declaration.get("default"), None


def _is_environment(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "env"


def take_kit_keys(
    configuration: dict[str, Any],
    declared: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
    environment: bool = True,
) -> dict[str, str]:
    """Give every key the kit knows that `configuration` leaves unset its value from
    the run's variables (`variables`, else those of `run_variables`), then (with
    `environment`) from `CHAOS_<KEY>`, as Chaos Toolkit gives a declared key its own.
    Returns, for each value that came from the environment, its variable (for a
    refusal's line)."""
    if variables is None:
        variables = _RUN_VARIABLES.get() or {}
    sources: dict[str, str] = {}
    for key, declaration in declared.items():  # what Chaos Toolkit read for the experiment
        if (
            _is_environment(declaration)
            and key not in variables
            and declaration.get("key") in os.environ
        ):
            sources[key] = declaration["key"]
    for key in SETTABLE_KEYS:
        if configuration.get(key) is not None:
            continue
        variable = environment_variable(key)
        if variables.get(key) is not None:
            value = variables[key]
            if _is_environment(value):
                value, source = _from_environment(value)
                if source:
                    sources[key] = source
        elif environment and variable in os.environ:
            value, sources[key] = os.environ[variable], variable
        else:
            value = configuration.get(key)
        configuration[key] = value
    return sources


def _resolved(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration not settled (a profile's variables), its values that read an
    environment variable read, one unset as None."""
    resolved = {}
    for key, value in configuration.items():
        if _is_environment(value):
            variable = value.get("key")
            value = os.environ.get(variable, value.get("default")) if variable else None
        resolved[key] = value
    return resolved


# --- conversion and checks ------------------------------------------------------------

_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
# pydantic's errors of a value's bounds; any other is of its type
_BOUND_ERRORS = (
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "finite_number",
)


def _markers(info: FieldInfo, cls: type) -> list[Any]:
    """The field's metadata of class `cls`, its annotation's (`Annotated[...] | None`) too."""
    found = [m for m in info.metadata if isinstance(m, cls)]
    stack = [info.annotation]
    while stack:
        annotation = stack.pop()
        found += [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, cls)]
        stack += [a for a in get_args(annotation) if not isinstance(a, cls)]
    return found


def _kind(annotation: Any) -> type | None:
    """The scalar type of an annotation (`int` of `Annotated[int, ...] | None`)."""
    if annotation in _KINDS:
        return annotation
    return next(filter(None, map(_kind, get_args(annotation))), None)


@dataclass(frozen=True)
class _Check:
    """How one key's value is converted and checked, and its refusal worded."""

    adapter: TypeAdapter
    kind: type | None
    example: Any = None
    bounds: _Range | None = None

    @classmethod
    def of_field(cls, info: FieldInfo) -> _Check:
        metadata = [m for m in info.metadata if not isinstance(m, _Provided | _JsonObject)]
        annotation = Annotated[info.annotation, *metadata] if metadata else info.annotation
        bounds = next(iter(_markers(info, _Range)), None)
        default = info.get_default(call_default_factory=True)
        example = default if default not in (None, "", {}, []) else (bounds and bounds.low)
        return cls(TypeAdapter(annotation), _kind(info.annotation), example, bounds)

    @classmethod
    def of_knob(cls, key: str, example: Any) -> _Check:
        """An experiment's own knob, of its declared default's type: a number finite and
        not negative, and a duration (`_s`) a day at most."""
        kind = type(example)
        bounds: dict[str, Any] = {}
        if kind in (int, float):
            bounds = {"ge": 0, "allow_inf_nan": False} if kind is float else {"ge": 0}
            if key.endswith("_s"):
                bounds["le"] = DAY_S
        annotation = Annotated[kind, Field(**bounds)] if bounds else kind
        return cls(TypeAdapter(annotation), kind, example)

    def __call__(self, name: str, value: Any, source: str | None, example: Any = None) -> Any:
        """`value` converted and checked; ConfigurationError names `source` (the
        environment variable it came from) or the key `name`."""
        example = self.example if example is None else example
        text = isinstance(value, str) and self.kind is not str
        given = value.strip() if text else value
        try:
            # text (an environment variable's, a `--var`) is read as its type says; a
            # var-file's or the experiment's value must be of the type already
            return self.adapter.validate_python(given, strict=not isinstance(value, str))
        except ValidationError as error:
            problem = error.errors()[0]
        if problem["type"] == "literal_error" and name == "target":
            return _refuse(
                f"configuration target={value!r} is unknown: use one of {', '.join(TARGETS)}"
            )
        wanted = _KINDS.get(self.kind, "an object")  # type: ignore[arg-type]
        if problem["type"] not in _BOUND_ERRORS:
            said = f"{source}={shown(value)}" if source else f"{name}: {shown(value)}"
            fix = f"give e.g. {json.dumps(example)}" if example is not None else f"give {wanted}"
            return _refuse(f"{said} is not {wanted}: {fix}")
        # of its type, out of bounds: said as it was given, or as it was read
        read = TypeAdapter(self.kind).validate_python(given, strict=False)
        said = f"{source}={shown(value)}" if source else f"{name}={shown(read)}"
        bound = (problem.get("ctx") or {}).get("ge", (problem.get("ctx") or {}).get("le"))
        if problem["type"] == "finite_number":
            return _refuse(f"{said} is not a finite number: give a real figure")
        if self.bounds is not None:
            return _refuse(f"{name}={shown(read)}: give {self.bounds.words}")
        if problem["type"] == "greater_than_equal" and bound == 0:
            unit = "seconds" if name.endswith("_s") else "a count"
            return _refuse(f"{said} is negative: give {unit}, 0 or more")
        if problem["type"] == "less_than_equal" and bound == DAY_S:
            return _refuse(f"{said} is longer than a day: give seconds, at most {DAY_S:g}")
        return _refuse(f"{said}: {problem['msg'].lower()}")


def _refuse(line: str) -> Any:
    raise ConfigurationError(line)


_CHECKS = {key: _Check.of_field(info) for key, info in _FIELDS.items()}
_GCP_CHECKS = {key: _Check.of_field(info) for key, info in GcpSettings.model_fields.items()}


def _declared_default(declaration: Any) -> Any:
    """An experiment's declared default for a key, when it is a plain value."""
    if _is_environment(declaration):
        declaration = declaration.get("default")
    if declaration is None or isinstance(declaration, dict | list) or declaration == "":
        return None
    return declaration


def _json_objects(values: dict[str, Any], sources: Mapping[str, str]) -> None:
    """The objects given as text (an environment variable's), read as JSON; other text
    that is not JSON is left for the object's own check to refuse in its words."""
    for key, info in _FIELDS.items():
        marker = next(iter(_markers(info, _JsonObject)), None)
        if marker is not None and isinstance(values.get(key), str):
            label = f"{key} ({sources.get(key) or environment_variable(key)})"
            try:
                values[key] = json_text(values[key], label, marker.hint)
            except KitError as error:
                if key in sources:
                    raise ConfigurationError(str(error)) from None


def _gcp(values: Mapping[str, Any], sources: Mapping[str, str]) -> GcpSettings:
    """Google Cloud's settings: the `gcp` object, its `gcp_<name>` keys over it."""
    given = values.get("gcp")
    if given is not None and not isinstance(given, Mapping):
        marker = next(iter(_markers(_FIELDS["gcp"], _JsonObject)))
        _refuse(f"gcp: {shown(given)} is not an object: {marker.hint}")
    merged = {**(given or {})}
    merged.update({k[4:]: v for k, v in values.items() if k.startswith("gcp_") and v is not None})
    checked = {}
    for name, value in merged.items():
        check = _GCP_CHECKS.get(name)
        source = sources.get(f"gcp_{name}")
        checked[name] = (
            value if check is None or value is None else check(f"gcp.{name}", value, source)
        )
    fields = {name for name in checked if name in _GCP_CHECKS}
    return GcpSettings.model_construct(_fields_set=fields, **checked)


def _build(
    configuration: Mapping[str, Any],
    declared: Mapping[str, Any],
    sources: Mapping[str, str],
    readable: bool = False,
) -> RunSettings:
    values = {k: v for k, v in configuration.items() if k != _SETTLED}
    if readable:  # what can be read: a value that cannot be used is left at its default
        for key in list(values):
            try:
                _build({key: values[key]}, declared, sources)
            except ConfigurationError:
                del values[key]
    _json_objects(values, sources)
    checked: dict[str, Any] = {"gcp": _gcp(values, sources)}
    for key, check in _CHECKS.items():
        if key != "gcp" and values.get(key) is not None:
            example = _declared_default(declared.get(key))
            checked[key] = check(key, values[key], sources.get(key), example)
    extras: dict[str, Any] = {}
    for key, value in values.items():
        if key in _FIELDS or key.startswith("gcp_"):
            continue
        example = _declared_default(declared.get(key))
        if value is None or type(example) not in _KINDS:
            extras[key] = value
        else:
            extras[key] = _Check.of_knob(key, example)(key, value, sources.get(key))
    given = set(checked) - ({"gcp"} if not checked["gcp"].model_fields_set else set())
    return RunSettings.model_construct(_fields_set=given, **checked, **extras)


def value_schemas(gcp: bool = False) -> dict[str, dict[str, Any]]:
    """The JSON Schema of each value a profile sets (of Google Cloud's, with `gcp`), made
    of the types and bounds the settings check it by."""
    checks = _GCP_CHECKS if gcp else {key: _CHECKS[key] for key in SETTABLE_KEYS}
    return {key: check.adapter.json_schema() for key, check in checks.items()}
