"""The shape of what the report reads: a journal, a game day's summary, a sweep's
limit.json, each field with the type it must have, checked by pydantic (strict: no
conversions, no NaN or infinity) before anything reads it.

A journal is read only once it fits, every nested field as the top level: a field of
the wrong type anywhere the report or `chaos gameday recommend` looks makes the journal
unreadable, with the field's path and what it should be, and never stops the review.
Fields nobody reads are not checked, and the outputs of activities other than the
kit's own (a user's probes) are neither checked nor read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NotRequired, TypedDict

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config

__all__ = ["KIT_MODULE", "check_journal", "check_limit", "check_summary"]

KIT_MODULE = "chaoskit."  # activities whose outputs the report reads: the kit's own
_STRICT = ConfigDict(strict=True, allow_inf_nan=False)


def _iso_time(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("should be a time in ISO 8601") from None
    return text


Time = Annotated[str, AfterValidator(_iso_time)]
# strict: an int or a float, never a bool or a text; finite, and small enough that the
# arithmetic on it (a margin, a sum of connections) stays finite
Number = Annotated[float, Field(ge=-1e15, le=1e15)]


class _Phase(TypedDict):
    phase: NotRequired[int | None]
    name: NotRequired[str | None]
    status: NotRequired[str | None]
    elapsed_s: NotRequired[Number | None]
    started_at: NotRequired[Time | None]
    cause: NotRequired[str | None]


class _Event(TypedDict):
    type: NotRequired[str | None]
    at: NotRequired[Time | None]


class _Percentiles(TypedDict):
    max_s: NotRequired[Number | None]


class _ConnectorConfig(TypedDict):
    connections_per_instance: NotRequired[Number | None]
    queue_timeout_s: NotRequired[Number | None]


@with_config(_STRICT)
class KitOutput(TypedDict):
    """Every field the report and the recommendations read from a kit activity's
    output: startup reports (`observe_startup`, `cold_start`), repeated starts, floods,
    storms, connector states and events, connection times, the early warning."""

    # a startup report; repeated starts count `ready` and `startup_failed` instead
    phases: NotRequired[list[_Phase]]
    ready: NotRequired[bool | int | None]
    startup_failed: NotRequired[bool | int | None]
    failed_phase: NotRequired[_Phase | None]
    exit_code: NotRequired[int | None]
    initialization_timeout_s: NotRequired[Number | None]
    failure_at: NotRequired[Time | None]
    # repeated starts
    reports: NotRequired[list[KitOutput]]
    exit_codes: NotRequired[dict[str, int]]
    starts: NotRequired[int]
    # floods, storms, connection times
    attempted: NotRequired[Number | None]
    established: NotRequired[Number | None]
    failed: NotRequired[dict[str, Number]]
    startups: NotRequired[Number | None]
    pool_size: NotRequired[Number | None]
    max_overflow: NotRequired[Number | None]
    pool_peak_utilisation: NotRequired[Number | None]
    pool_peak_checked_out: NotRequired[Number | None]
    timeout_threshold_s: NotRequired[Number | None]
    attempt: NotRequired[_Percentiles | None]
    latency: NotRequired[_Percentiles | None]
    connect_latency: NotRequired[_Percentiles | None]
    # the database and the connector
    max_connections: NotRequired[Number | None]
    utilisation: NotRequired[Number | None]
    instances: NotRequired[Number | None]
    capacity: NotRequired[Number | None]
    active: NotRequired[Number | None]
    waiting: NotRequired[Number | None]
    connections_per_instance: NotRequired[Number | None]
    config: NotRequired[_ConnectorConfig | None]
    event: NotRequired[_Event | None]
    indicators: NotRequired[dict[str, Number | None] | None]
    warned_at: NotRequired[Time | None]


class _Provider(TypedDict):
    module: NotRequired[str | None]
    func: NotRequired[str | None]
    arguments: NotRequired[dict[str, Any] | None]


class _Activity(TypedDict):
    name: str
    type: NotRequired[str | None]
    provider: NotRequired[_Provider | None]
    tolerance: NotRequired[Any]


class _Run(TypedDict):
    activity: _Activity
    status: NotRequired[str | None]
    start: NotRequired[Time | None]
    end: NotRequired[Time | None]
    duration: NotRequired[Number | None]
    output: NotRequired[Any]
    tolerance_met: NotRequired[bool | None]
    exception: NotRequired[list[str] | None]


class _SteadyState(TypedDict):
    steady_state_met: NotRequired[bool | None]
    probes: NotRequired[list[_Run] | None]


class _SteadyStates(TypedDict):
    before: NotRequired[_SteadyState | None]
    during: NotRequired[list[_SteadyState | None] | None]
    after: NotRequired[_SteadyState | None]


class _Expectation(TypedDict):
    name: str
    expected: NotRequired[str | None]
    observed: NotRequired[Any]
    met: NotRequired[bool | None]
    step: NotRequired[int | None]
    kind: NotRequired[str | None]


class _Recovery(TypedDict):
    time_to_recover_s: NotRequired[Number | None]
    recovered: NotRequired[bool | None]


class _Breach(TypedDict):
    at: NotRequired[Time | None]
    condition: NotRequired[str | None]


class _StopConditions(TypedDict):
    stopped_by: NotRequired[_Breach | None]


class _Sample(TypedDict):
    at: Time
    connector_utilisation: NotRequired[Number | None]
    connector_active: NotRequired[Number | None]
    connector_waiting: NotRequired[Number | None]
    connector_instances: NotRequired[Number | None]
    database_utilisation: NotRequired[Number | None]
    database_in_use: NotRequired[Number | None]
    flood_connections: NotRequired[Number | None]


class _KitSection(TypedDict):
    verdict: NotRequired[str]
    reason: NotRequired[str | None]
    target: NotRequired[str | None]
    database_phase: NotRequired[str | None]
    experiment_file: NotRequired[str | None]
    expectations: NotRequired[list[_Expectation] | None]
    recovery: NotRequired[_Recovery | None]
    timeline: NotRequired[list[_Sample] | None]
    figures: NotRequired[dict[str, Number] | None]
    capacity: NotRequired[dict[str, Number] | None]
    stop_conditions: NotRequired[_StopConditions | None]


class _Hypothesis(TypedDict):
    probes: NotRequired[list[Any] | None]


# the hypothesis's key is no Python name
_Experiment = TypedDict(
    "_Experiment",
    {
        "title": NotRequired[str | None],
        "contributions": NotRequired[dict[str, str] | None],
        "rollbacks": NotRequired[list[Any] | None],
        "steady-state-hypothesis": NotRequired[_Hypothesis | None],
    },
)


class _SafeguardActivity(TypedDict):
    tolerance: NotRequired[Any]


class _SafeguardRun(TypedDict):
    status: NotRequired[str | None]
    activity: NotRequired[_SafeguardActivity | None]
    exception: NotRequired[list[str] | None]


class _Safeguards(TypedDict):
    """As chaostoolkit-addons' safeguards (and the kit's stop conditions) record them,
    read by the toolkit's own report of the run."""

    triggered_by: NotRequired[str | None]
    run: NotRequired[_SafeguardRun | None]


@with_config(_STRICT)
class Journal(TypedDict):
    experiment: _Experiment
    status: str
    start: Time
    end: NotRequired[Time | None]
    duration: NotRequired[Number | None]
    run: NotRequired[list[_Run] | None]
    rollbacks: NotRequired[list[_Run] | None]
    steady_states: NotRequired[_SteadyStates | None]
    safeguards: NotRequired[_Safeguards | None]
    startup_chaos_kit: NotRequired[_KitSection | None]


class _Preflight(TypedDict):
    healthy: NotRequired[bool | None]
    reasons: NotRequired[list[str] | None]


class _SummaryEntry(TypedDict):
    name: str
    expected: str
    file: NotRequired[str | None]


@with_config(_STRICT)
class Summary(TypedDict):
    """A game day's summary.json, as the report reads it."""

    gameday_id: str
    started_at: NotRequired[Time | None]
    ended_at: NotRequired[Time | None]
    name: NotRequired[str | None]
    suite: NotRequired[str | None]
    target: NotRequired[str | None]
    profiles: NotRequired[list[str] | None]
    status: NotRequired[str | None]
    preflight: NotRequired[_Preflight | None]
    experiments: NotRequired[list[_SummaryEntry] | None]


class _Probe(TypedDict):
    value: Number
    verdict: str


class _Headroom(TypedDict):
    current_value: NotRequired[Number | None]
    room: NotRequired[Number | None]


@with_config(_STRICT)
class Limit(TypedDict):
    """A breaking-point sweep's limit.json, as the report reads it."""

    experiment: str
    knob: str
    probes: list[_Probe]
    unit: NotRequired[str | None]
    status: NotRequired[str | None]
    breaking_point: NotRequired[Number | None]
    broken_at: NotRequired[Number | None]
    deterministic: NotRequired[bool | None]
    message: NotRequired[str | None]
    headroom: NotRequired[_Headroom | None]


_JOURNAL = TypeAdapter(Journal)
_OUTPUT = TypeAdapter(KitOutput)
_SUMMARY = TypeAdapter(Summary)
_LIMIT = TypeAdapter(Limit)
_KINDS = {
    bool: "true or false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _path(document: Any, loc: tuple[int | str, ...]) -> tuple[str, Any]:
    """The field's path as a reader writes it (`run[2].output.phases[0].elapsed_s`),
    and the value found there. pydantic's location also names the branches of a union
    tried (`int`, `bool`): only the steps that exist in the document are kept."""
    text, node = "", document
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            text, node = f"{text}.{step}" if text else step, node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            text, node = f"{text}[{step}]", node[step]
    return text, node


def _problem(document: Any, error: ValidationError, prefix: tuple[int | str, ...] = ()) -> str:
    first = error.errors()[0]
    path, found = _path(document, (*prefix, *first["loc"]))
    if first["type"] == "missing":
        return f"{path + '.' if path else ''}{first['loc'][-1]} is missing"
    kind = _KINDS.get(type(found), type(found).__name__)
    message = first["msg"].removeprefix("Value error, ")
    return f"{path}: {message[0].lower()}{message[1:]} (it is {kind})"


def _kit_runs(journal: dict[str, Any]) -> list[tuple[tuple[int | str, ...], Any]]:
    """(location, output) of every activity of the kit's in the method and rollbacks."""
    found = []
    for key in ("run", "rollbacks"):
        for index, run in enumerate(journal.get(key) or []):
            module = ((run["activity"].get("provider") or {}).get("module")) or ""
            if module.startswith(KIT_MODULE) and isinstance(run.get("output"), dict):
                found.append(((key, index, "output"), run["output"]))
    return found


def check_journal(journal: dict[str, Any]) -> str | None:
    """Why `journal` cannot be read (the first field that is not as written), or None."""
    try:
        _JOURNAL.validate_python(journal)
    except ValidationError as error:
        return _problem(journal, error)
    for loc, output in _kit_runs(journal):
        try:
            _OUTPUT.validate_python(output)
        except ValidationError as error:
            return _problem(journal, error, loc)
    return None


def check_summary(summary: dict[str, Any]) -> str | None:
    """Why a game day's summary cannot be read, or None."""
    try:
        _SUMMARY.validate_python(summary)
    except ValidationError as error:
        return _problem(summary, error)
    return None


def check_limit(limit: dict[str, Any]) -> str | None:
    """Why a sweep's limit.json cannot be read, or None."""
    try:
        _LIMIT.validate_python(limit)
    except ValidationError as error:
        return _problem(limit, error)
    return None
