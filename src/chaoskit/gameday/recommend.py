"""Recommendations, from journals: what would have held, with a margin and the evidence
it came from, written as a var-file (`chaos gameday recommend`), and verified by running
the experiments that reproduced again with it layered on (`--verify`).

Each rule reads what a reproduced run recorded (the kit's `figures`: the settled
configuration's numbers; its `capacity`: the database's and the connector's at the
method's start; the activities' outputs) and answers with one configuration key:

- the database was full (`too_many_connections`): the key that set its `max_connections`
  (`database_max_connections` unless the run reduced it) for the sessions at rest, every
  flood's connections, each startup's pool and the reserved slots;
- the connector queued the startup past its connect timeout: `connector_min_instances`
  for what went through it at once;
- the connector scaled out only after Phase 3 gave up: `initialization_timeout_s` past
  the scale-out;
- Phase 3's schema read crossed a throttled connector (`slow_schema_query`):
  `initialization_timeout_s` for the bytes at that rate;
- startups waited on one pool past its timeout (`pool_timeout`): `storm_max_overflow` so
  that the pool holds every concurrent startup.

A lock held across Phase 3 has no configuration answer: what holds the lock is the fault,
and the kit says so. Where several runs ask for the same key the largest answer is kept.
Capacities get a fifth more than the worst seen (the connector: room for one more
instance's pool, in whole instances): enough to hold, and not so much that the
experiment's own pressure thresholds stop registering, so that `--verify` can tell.
On staging the same figures are printed as the Google Cloud changes a reviewer would
make; nothing is applied.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslib import merge_vars
from rich.console import Console

from chaoskit.gameday.execution import held_target, run_experiment_file
from chaoskit.kit.files import write_json_atomically
from chaoskit.kit.redaction import redact_secrets
from chaoskit.kit.shipped import experiments_folder
from chaoskit.report.analysis import moment
from chaoskit.report.journal_schema import KIT_MODULE
from chaoskit.report.journals import RunRecord, read_journals

__all__ = [
    "MARGIN",
    "Recommendation",
    "recommend",
    "remediation_var_file",
    "verify_recommendations",
]

MARGIN = 1.2  # capacities: a fifth more than the worst seen
TIME_MARGIN = 1.5  # deadlines: half as long again
_TEMPLATE = re.compile(r"^\$\{([a-z0-9_]+)\}$")


@dataclass
class Recommendation:
    key: str
    value: int | float
    margin: str
    evidence: str
    google_cloud: str
    experiments: list[str] = field(default_factory=list)
    verified: bool | None = None  # None: not verified


class _Run:
    """What one reproduced journal says, for the rules: read only once the report's
    reader has checked every field it reads (journal_schema), the kit's outputs only."""

    def __init__(self, record: RunRecord) -> None:
        self.name = record.experiment
        self.figures: dict[str, Any] = record.kit.get("figures") or {}
        self.capacity: dict[str, Any] = record.kit.get("capacity") or {}
        self.outputs = [
            (run["activity"], run["output"])
            for run in record.journal.get("run") or []
            if isinstance(run.get("output"), dict)
            and ((run["activity"].get("provider") or {}).get("module") or "").startswith(KIT_MODULE)
        ]
        failures = [o["failed_phase"] for _, o in self.outputs if o.get("failed_phase")]
        for _, output in self.outputs:  # repeated cold starts report each start's
            failures += [
                r["failed_phase"] for r in output.get("reports") or [] if r.get("failed_phase")
            ]
        self.failed: dict[str, Any] | None = failures[0] if failures else None

    @property
    def cause(self) -> str | None:
        return (self.failed or {}).get("cause")

    def called(self, func: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(arguments as declared, output) of every call of `func`."""
        return [
            ((activity.get("provider") or {}).get("arguments") or {}, output)
            for activity, output in self.outputs
            if (activity.get("provider") or {}).get("func") == func
        ]

    def floods(self, through_connector: bool | None = None) -> int:
        """Connections the run's floods attempted (only those through the connector, or
        only those straight to the database, when asked)."""
        total = 0
        for arguments, output in self.called("start_connection_flood"):
            via_connector = "direct_database_url" not in str(arguments.get("target_dsn", ""))
            if through_connector is None or through_connector == via_connector:
                total += int(output.get("attempted") or 0)
        return total

    def storm(self) -> dict[str, Any] | None:
        return next((o for _, o in self.called("run_acquisition_storm")), None)


def _database_full(run: _Run) -> Recommendation | None:
    storm = run.storm()
    refused = run.cause == "too_many_connections" or (
        storm is not None and (storm.get("failed") or {}).get("too_many_connections")
    )
    if not refused or any(
        k not in run.capacity for k in ("max_connections", "in_use_at_rest", "reserved")
    ):
        return None
    # the run may have set max_connections itself (a smaller tier): answer with its key
    key = "database_max_connections"
    for arguments, _ in run.called("set_max_connections"):
        if found := _TEMPLATE.match(str(arguments.get("max_connections", ""))):
            key = found.group(1)
    max_connections = next(
        (
            o["max_connections"]
            for _, o in run.called("set_max_connections")
            if o.get("max_connections") is not None
        ),
        run.capacity["max_connections"],
    )
    pool = int(run.figures.get("pool_size") or 0)
    startups = int(storm.get("startups") or 0) if storm else 1
    at_rest, reserved = run.capacity["in_use_at_rest"], run.capacity["reserved"]
    demand = at_rest + run.floods() + startups * pool + reserved
    value = math.ceil(demand * MARGIN)
    pools = f"{startups} startups' pools of {pool}" if storm else f"the fresh instance's {pool}"
    return Recommendation(
        key,
        value,
        f"x{MARGIN}",
        f"{run.name}: {at_rest} sessions at rest + {run.floods()} flood connections + "
        f"{pools} + {reserved} reserved = {demand}, against max_connections={max_connections}",
        f"Cloud SQL: set the max_connections flag to {value} (gcloud sql instances patch "
        f"INSTANCE --database-flags=max_connections={value}), on a tier that allows it",
    )


def _connector_queue(run: _Run) -> Recommendation | None:
    through = run.floods(through_connector=True)
    per_instance = next(
        (
            o["connections_per_instance"]
            for _, o in reversed(run.outputs)
            if o.get("connections_per_instance") is not None
        ),
        run.capacity.get("connector_connections_per_instance"),
    )
    if run.cause != "connect_timeout" or not through or not per_instance:
        return None
    pool = int(run.figures.get("pool_size") or 0)
    at_rest = int(run.capacity.get("connector_active_at_rest") or 0)
    demand = at_rest + through + pool
    value = math.ceil((demand + pool) / per_instance)
    return Recommendation(
        "connector_min_instances",
        value,
        f"+{pool} connections (one more instance's pool)",
        f"{run.name}: {at_rest} connections at rest + {through} flood connections + the "
        f"fresh instance's pool of {pool} = {demand} at once, against "
        f"{run.capacity.get('connector_instances')} instances of {per_instance}",
        f"Serverless VPC Access: run at least {value} instances from the start (gcloud "
        f"compute networks vpc-access connectors update CONNECTOR --min-instances={value}), "
        "or a larger machine type for as many connections on fewer",
    )


def _scaled_out_too_late(run: _Run) -> Recommendation | None:
    failure_at = next((o.get("failure_at") for _, o in run.outputs if o.get("failure_at")), None)
    scaled = next(
        (
            o["event"]
            for _, o in run.outputs
            if o.get("event") and o["event"].get("type") == "scaled_out" and o["event"].get("at")
        ),
        None,
    )
    if not failure_at or not scaled or not run.failed:
        return None
    gap = (moment(scaled["at"]) - moment(failure_at)).total_seconds()
    if gap <= 0:
        return None
    needed = float(run.failed.get("elapsed_s") or 0) + gap
    value = math.ceil(needed * TIME_MARGIN)
    return Recommendation(
        "initialization_timeout_s",
        value,
        f"x{TIME_MARGIN}",
        f"{run.name}: Phase 3 gave up after {run.failed.get('elapsed_s')}s, the connector "
        f"scaled out {gap:.2f}s later",
        f"Cloud Run: give the service an initialization timeout of {value}s (its "
        "environment), and a startup probe that waits as long",
    )


def _slow_schema(run: _Run) -> Recommendation | None:
    size, mbps = run.figures.get("schema_load_bytes"), run.figures.get("throttled_mbps")
    if run.cause != "slow_schema_query" or not size or not mbps:
        return None
    needed = size * 8 / (mbps * 1e6)
    value = math.ceil(needed * TIME_MARGIN)
    return Recommendation(
        "initialization_timeout_s",
        value,
        f"x{TIME_MARGIN}",
        f"{run.name}: Phase 3 reads {size} bytes through a connector at {mbps} Mbit/s: "
        f"{needed:.1f}s",
        f"Cloud Run: give the service an initialization timeout of {value}s, or the "
        "connector more throughput (more instances, a larger machine type)",
    )


def _pool_too_small(run: _Run) -> Recommendation | None:
    storm = run.storm()
    if storm is None or not (storm.get("failed") or {}).get("pool_timeout"):
        return None
    startups = int(storm.get("startups") or run.figures.get("storm_startups") or 0)
    pool = int(run.figures.get("storm_pool_size") or storm.get("pool_size") or 0)
    value = max(0, math.ceil(startups * MARGIN) - pool)
    return Recommendation(
        "storm_max_overflow",
        value,
        f"x{MARGIN}",
        f"{run.name}: {startups} startups at once on one pool of {pool} + "
        f"{run.figures.get('storm_max_overflow')}; {storm['failed']['pool_timeout']:g} waited "
        "past the pool timeout",
        f"the service's pool: max_overflow {value} beside pool_size {pool} (its environment), "
        "with max_connections room for them",
    )


RULES: tuple[Callable[[_Run], Recommendation | None], ...] = (
    _database_full,
    _connector_queue,
    _scaled_out_too_late,
    _slow_schema,
    _pool_too_small,
)


def _why_unanswered(run: _Run) -> str:
    """Why no configuration would have held `run`."""
    if run.called("start_lock_pressure"):
        return (
            "a lock held across Phase 3 blocks its schema read: no capacity holds that; "
            "keep the lock holder's transactions short (a lock_timeout on migrations)"
        )
    return "no rule of the kit's says what would have held it"


def _experiment_file(record: RunRecord, files: dict[str, dict[str, str]]) -> Path:
    """The experiment file a game day's journal came from (its summary says), else the
    one of that name in the experiments folder (./experiments, else the kit's own)."""
    ran = files.get(record.gameday_id or "", {}).get(record.experiment)
    return Path(ran) if ran else experiments_folder() / f"{record.experiment}.json"


def recommend(
    sources: Iterable[Path],
) -> tuple[list[Recommendation], dict[str, Path], dict[str, str]]:
    """(recommendations, the reproduced experiments they answer and their files, those
    nothing answers with why) from the reproduced runs in `sources`; the latest run of
    each experiment counts."""
    latest: dict[str, RunRecord] = {}
    found = read_journals(list(sources))
    files = {g.gameday_id: g.files for g in found.gamedays}
    for record in found.runs:
        if record.kit.get("verdict") == "reproduced":
            latest[record.experiment] = record
    found: dict[str, Recommendation] = {}
    unanswered: dict[str, str] = {}
    for name, record in sorted(latest.items()):
        run = _Run(record)
        answers = [r for rule in RULES if (r := rule(run)) is not None]
        if not answers:
            unanswered[name] = _why_unanswered(run)
        for answer in answers:
            kept = found.get(answer.key)
            if kept is None or answer.value > kept.value:
                answer.experiments = sorted({name, *(kept.experiments if kept else [])})
                found[answer.key] = answer
            else:
                kept.experiments = sorted({*kept.experiments, name})
    answered = {
        name: _experiment_file(r, files) for name, r in latest.items() if name not in unanswered
    }
    return list(found.values()), answered, unanswered


def verify_recommendations(
    recommendations: list[Recommendation],
    experiments: dict[str, Path],
    profiles: list[Path],
    journals: Path,
    console: Console,
) -> list[dict[str, Any]]:
    """Run each experiment a recommendation came from again, with every recommendation
    layered over `profiles`; mark each recommendation verified when all its experiments
    were tolerated. Returns `{"experiment", "before", "after", "reason", "journal"}` per
    experiment."""
    config_vars, secret_vars = merge_vars({}, [str(p) for p in profiles])
    config_vars.update({r.key: r.value for r in recommendations})
    folder = journals / f"verify-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    results: list[dict[str, Any]] = []
    with held_target(config_vars, f"verify:{folder.name}", console.print) as stop:
        for name, path in experiments.items():
            if stop.signal:
                break
            journal, _ = run_experiment_file(path, config_vars, secret_vars, {}, stop)
            journal_path = folder / f"{name}.json"
            write_json_atomically(journal_path, redact_secrets(journal))
            kit = journal.get("startup_chaos_kit") or {}
            after = kit.get("verdict", "error")
            why = "" if after == "tolerated" else f" ({kit.get('reason')})"
            if after == "inconclusive" and "pressure not applied" in str(kit.get("reason")):
                why += ": the fix took away the pressure this experiment applies"
            console.print(f"verify {name}: reproduced -> {after}{why}", highlight=False)
            results.append(
                {
                    "experiment": name,
                    "before": "reproduced",
                    "after": after,
                    "reason": kit.get("reason"),
                    "journal": str(journal_path),
                }
            )
    held = {r["experiment"] for r in results if r["after"] == "tolerated"}
    for recommendation in recommendations:
        recommendation.verified = set(recommendation.experiments) <= held
    return results


def remediation_var_file(
    recommendations: list[Recommendation], verification: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A var-file of the recommendations; `about` it, how each was found and the
    verification's outcome per experiment (or that it was not verified)."""
    return {
        "configuration": {r.key: r.value for r in recommendations},
        "about": {
            "recommendations": [asdict(r) for r in recommendations],
            "verification": verification if verification is not None else "not verified",
        },
    }
