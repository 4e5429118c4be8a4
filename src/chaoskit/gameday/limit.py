"""Breaking points: the most pressure on one knob at which an experiment is still
`tolerated`, found by real runs (`chaos gameday limit`).

The sweep brackets the breaking point between the two ends of the knob's range (the
least pressure must be tolerated, the most must not), then bisects: each probe is a
real run of the experiment, in this process, with the knob overridden, on one testbed
kept up for the whole sweep. A range of 1,000 is resolved to 1 in at most 12 probes.
Next to the boundary it repeats the runs (`repeat`) and says whether the boundary is
deterministic. Every probe's journal is kept, and `limit.json` beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from chaoslib.exceptions import ChaosException
from chaoslib.types import Settings
from rich.console import Console

from chaoskit.gameday.execution import StopSignals, held_target, run_experiment_file
from chaoskit.gameday.experiment_file import load_experiment_file
from chaoskit.kit import registry
from chaoskit.kit.errors import KitError
from chaoskit.kit.files import write_json_atomically
from chaoskit.kit.redaction import redact_secrets
from chaoskit.kit.settings import RunSettings
from chaoskit.verification.configuration import run_configuration
from chaoskit.verification.control import JOURNAL_KEY
from chaoskit.verification.extension import read_extension
from chaoskit.verification.knobs import Knob

__all__ = [
    "LimitError",
    "SweepInterrupted",
    "bisect_breaking_point",
    "checked_sweep",
    "most_probes",
    "run_limit",
]

TOLERATED = "tolerated"
BROKEN = ("reproduced", "deviated")
_MAX_REPEAT = 20  # runs a side of the boundary


class LimitError(KitError):
    """The sweep cannot start: an unknown knob, a range outside the knob's, ..."""


class SweepInterrupted(Exception):
    """SIGINT or SIGTERM: the sweep stops after the probe under way."""


@dataclass
class Sweep:
    status: str  # found, no-breaking-point, inconclusive, interrupted
    message: str
    breaking_point: float | None = None  # the most pressure still tolerated
    broken_at: float | None = None  # the least pressure that was not
    deterministic: bool | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)


def bisect_breaking_point(
    probe: Callable[[float], str], knob: Knob, low: float, high: float, repeat: int = 1
) -> Sweep:
    """The breaking point of `knob` in [low, high], `probe(value)` giving the verdict
    of one run. Needs the least pressure tolerated and the most not."""
    calm, stressed = (knob.value(v) for v in knob.least_and_most_pressure(low, high))
    ends = {calm: probe(calm), stressed: probe(stressed)}
    for value, verdict in ends.items():
        if verdict != TOLERATED and verdict not in BROKEN:
            return Sweep(
                "inconclusive",
                f"{knob.name}={value}: {verdict}, not a verdict to sweep on (see its journal)",
            )
    span = f"[{knob.value(low)}, {knob.value(high)}]"
    if ends[calm] == ends[stressed]:
        return Sweep("no-breaking-point", f"no breaking point in {span}: {ends[calm]} at both ends")
    if ends[calm] != TOLERATED:
        return Sweep(
            "no-breaking-point",
            f"no breaking point in {span}: {ends[calm]} at "
            f"{calm} but tolerated at {stressed}: more {knob.name} is not more "
            "pressure here (check the knob's `pressure`)",
        )
    ok, broken = calm, stressed
    while abs(broken - ok) > knob.resolution:
        middle = ok + (broken - ok) / 2
        middle = knob.value(
            math.floor(middle)
            if knob.whole and ok < broken
            else math.ceil(middle)
            if knob.whole
            else middle
        )
        if middle in (ok, broken):
            break
        verdict = probe(middle)
        if verdict == TOLERATED:
            ok = middle
        elif verdict in BROKEN:
            broken = middle
        else:
            return Sweep(
                "inconclusive",
                f"{knob.name}={middle}: {verdict}, not a verdict to sweep on (see its journal)",
                ok,
                broken,
            )
    repeated = [probe(ok) == TOLERATED for _ in range(repeat - 1)]
    repeated += [probe(broken) in BROKEN for _ in range(repeat - 1)]
    return Sweep(
        "found", f"breaking point {knob.name}={ok} {knob.unit}".strip(), ok, broken, all(repeated)
    )


def _observations(journal: dict[str, Any]) -> dict[str, Any]:
    """What a reader of a probe wants beside its verdict: the failed phase (its name,
    how it ended, its elapsed time) and cause, from the first startup report of the run."""
    for run in journal.get("run") or []:
        output = run.get("output")
        if isinstance(output, dict) and "failed_phase" in output:
            failed = output.get("failed_phase") or {}
            return {
                "phase": failed.get("name"),
                "phase_status": failed.get("status"),
                "phase_elapsed_s": failed.get("elapsed_s"),
                "cause": failed.get("cause"),
                "ready": output.get("ready"),
            }
    return {}


def failed_phase(probe: dict[str, Any]) -> str | None:
    """A probe's failed phase as a person reads it: `connect-database timeout after 3.05s`."""
    if not probe.get("phase"):
        return None
    elapsed = probe.get("phase_elapsed_s")
    after = f" after {elapsed:.3g}s" if isinstance(elapsed, int | float) else ""
    return f"{probe['phase']} {probe.get('phase_status')}{after}"


def _current_value(
    knob: Knob, experiment: dict[str, Any], config_vars: dict[str, Any]
) -> float | None:
    """The value a run without the sweep gives the knob, as its configuration settles
    (the profiles', the environment's, the experiment's default, the kit's); None when
    it cannot settle."""
    try:
        return RunSettings.of(run_configuration(experiment, config_vars)).value(knob.name)
    except (KitError, ChaosException):
        return None


@dataclass
class _Prober:
    """One real run per probe, its journal kept under `folder`."""

    path: Path
    knob: Knob
    config_vars: dict[str, Any]
    secret_vars: dict[str, Any]
    settings: Settings
    folder: Path
    stop: StopSignals
    report: Callable[[dict[str, Any]], None]
    probes: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, value: float) -> str:
        if self.stop.signal:
            raise SweepInterrupted
        variables = {**self.config_vars, self.knob.name: value}
        try:
            journal, recorder = run_experiment_file(
                self.path, variables, self.secret_vars, self.settings, self.stop
            )
        except KeyboardInterrupt:
            registry.stop_all()  # interrupted outside the part Chaos Toolkit guards
            raise SweepInterrupted from None
        index = len(self.probes) + 1
        journal_path = self.folder / f"{index:02d}-{self.knob.name}-{value}.json"
        write_json_atomically(journal_path, redact_secrets(journal))
        kit = journal.get(JOURNAL_KEY) or {}
        probe = {
            "probe": index,
            "value": value,
            "verdict": kit.get("verdict", "error"),
            "reason": kit.get("reason"),
            "duration_s": round(journal.get("duration") or 0, 3),
            **_observations(journal),
            "journal": str(journal_path),
        }
        self.probes.append(probe)
        self.report(probe)
        self.stop.signal = self.stop.signal or recorder.received or kit.get("interrupted_by")
        if self.stop.signal:
            raise SweepInterrupted
        return probe["verdict"]


def checked_sweep(
    path: Path, knob_name: str | None, low: float | None, high: float | None, repeat: int
) -> tuple[dict[str, Any], Knob, float, float]:
    """(the experiment, its knob, the range) a sweep takes; LimitError says what cannot
    be swept: a file that does not load, an unknown knob, a range the wrong way round."""
    experiment = load_experiment_file(path)
    extension = read_extension(experiment)
    if not extension.knobs:
        raise LimitError(f"{path}: its extension declares no knobs to sweep")
    name = knob_name or next(iter(extension.knobs))
    knob = extension.knobs.get(name)
    if knob is None:
        raise LimitError(
            f"--knob {name}: {path.name} declares no such knob; it has {', '.join(extension.knobs)}"
        )
    low = knob.low if low is None else low
    high = knob.high if high is None else high
    # past the knob's declared range is allowed (a larger database than the testbed's):
    # the guardrails and the activities' caps judge a probe's values
    for option, value in (("--from", low), ("--to", high)):
        if not math.isfinite(value) or value < knob.low:
            raise LimitError(
                f"{option} {value:g}: give a number of at least {knob.low:g} {knob.unit}".rstrip()
                + f" ({knob.name}'s lowest)"
            )
    if not low < high:
        raise LimitError(f"--from {low:g} --to {high:g}: give a range with from < to")
    if not 1 <= repeat <= _MAX_REPEAT:
        raise LimitError(f"--repeat {repeat}: give 1 to {_MAX_REPEAT}")
    return experiment, knob, low, high


def most_probes(knob: Knob, low: float, high: float, repeat: int) -> int:
    """How many runs a sweep of [low, high] takes at most: both ends, the bisection down
    to the knob's resolution, and the repeats either side of the boundary."""
    halvings = max(0, math.ceil(math.log2((high - low) / knob.resolution)))
    return 2 + halvings + 2 * (repeat - 1)


def run_limit(
    path: Path,
    knob_name: str | None,
    low: float | None,
    high: float | None,
    repeat: int,
    profiles: list[Path],
    journals: Path,
    settings: Settings,
    console: Console,
) -> dict[str, Any]:
    """Sweep one knob of the experiment at `path`; return what `limit.json` holds.
    LimitError for what cannot be swept, before anything runs."""
    experiment, knob, low, high = checked_sweep(path, knob_name, low, high, repeat)
    config_vars, secret_vars = merge_vars({}, [str(p) for p in profiles])
    started = datetime.now(UTC)
    limit_id = f"limit-{started:%Y%m%dT%H%M%SZ}-{path.stem}-{knob.name}"
    folder = journals / limit_id
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "limit_id": limit_id,
        "experiment": str(path),
        "knob": knob.name,
        "pressure": knob.pressure,
        "unit": knob.unit,
        "range": [low, high],
        "repeat": repeat,
        "profiles": [str(p) for p in profiles],
        "started_at": started.isoformat(),
        "status": "error",
        "current_value": _current_value(knob, experiment, config_vars),
    }

    def report(probe: dict[str, Any]) -> None:
        failed = failed_phase(probe)
        seen = f" ({failed}, {probe.get('cause') or 'no cause given'})" if failed else ""
        console.print(
            f"probe {probe['probe']:2d}: {knob.name}={probe['value']} -> {probe['verdict']}{seen}",
            highlight=False,
        )

    with held_target(config_vars, f"limit:{limit_id}", console.print) as stop:
        prober = _Prober(path, knob, config_vars, secret_vars, settings, folder, stop, report)
        try:
            sweep = bisect_breaking_point(prober, knob, low, high, repeat)
        except SweepInterrupted:
            sweep = Sweep("interrupted", f"interrupted by {stop.signal or 'SIGINT'}")
        result.update(
            status=sweep.status,
            message=sweep.message,
            probes=prober.probes,
            breaking_point=sweep.breaking_point,
            broken_at=sweep.broken_at,
            deterministic=sweep.deterministic,
        )
        result["headroom"] = _headroom(knob, sweep.breaking_point, result["current_value"])
        result["ended_at"] = datetime.now(UTC).isoformat()
        write_json_atomically(folder / "limit.json", redact_secrets(result))
    return result


def _headroom(knob: Knob, breaking_point: float | None, current: Any) -> dict[str, Any] | None:
    """How far today's value is from the breaking point, in the knob's unit and as a
    share of today's value: positive, room to spare; negative, already past it."""
    if breaking_point is None or not isinstance(current, int | float) or isinstance(current, bool):
        return None
    room = breaking_point - current if knob.pressure == "up" else current - breaking_point
    share = round(room / current, 3) if current else None
    return {"current_value": current, "room": knob.value(room), "share": share}
