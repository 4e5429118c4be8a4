"""Recommendations, from journals: what would have held, with a margin and the evidence
it came from, written as a var-file (`chaos gameday recommend`), and verified by running
the experiments that reproduced again with it layered on (`--verify`).

Each rule reads what a reproduced run recorded (the kit's `figures`: the settled
configuration's numbers; its `capacity`: the database's and the connector's at the
method's start; the activities' outputs) and answers with one configuration key:

- the database was full (`too_many_connections`): `database_max_connections` for the
  sessions at rest, every flood's connections, the fresh instance's pool and the
  reserved slots;
- the connector queued the startup past its connect timeout: `connector_connections_per_
  instance` for what went through it at once, over its instances;
- the connector scaled out only after Phase 3 gave up: `initialization_timeout_s` past
  the scale-out;
- Phase 3's schema read crossed a throttled connector (`slow_schema_query`):
  `initialization_timeout_s` for the bytes at that rate;
- startups waited on one pool past its timeout (`pool_timeout`): `storm_max_overflow` so
  that the pool holds every concurrent startup.

Where several runs ask for the same key the largest answer is kept. On staging the same
figures are printed as the Google Cloud changes a reviewer would make; nothing is applied.
"""

from __future__ import annotations

import json
import math
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
from chaoskit.report.journals import RunRecord, read_journals

__all__ = [
    "MARGIN",
    "Recommendation",
    "recommend",
    "remediation_var_file",
    "verify_recommendations",
]

MARGIN = 1.25  # capacities: a quarter more than the worst seen
TIME_MARGIN = 1.5  # deadlines: half as long again


@dataclass
class Recommendation:
    key: str
    value: int | float
    margin: float
    evidence: str
    google_cloud: str
    experiments: list[str] = field(default_factory=list)
    verified: bool | None = None  # None: not verified


class _Run:
    """What one reproduced journal says, for the rules."""

    def __init__(self, record: RunRecord) -> None:
        self.name = record.experiment
        self.journal = record.journal
        kit = record.journal.get("startup_chaos_kit") or {}
        self.figures: dict[str, Any] = kit.get("figures") or {}
        self.capacity: dict[str, Any] = kit.get("capacity") or {}
        self.outputs = [
            (run.get("activity") or {}, run.get("output"))
            for run in record.journal.get("run") or []
            if isinstance(run.get("output"), dict)
        ]
        self.failed = next(
            (o["failed_phase"] for _, o in self.outputs if o.get("failed_phase")), None
        )

    @property
    def cause(self) -> str | None:
        return (self.failed or {}).get("cause")

    def floods(self, through_connector: bool | None = None) -> int:
        """Connections the run's floods attempted (only those through the connector, or
        only those straight to the database, when asked)."""
        total = 0
        for activity, output in self.outputs:
            provider = activity.get("provider") or {}
            if provider.get("func") != "start_connection_flood":
                continue
            target = str((provider.get("arguments") or {}).get("target_dsn", ""))
            via_connector = "direct_database_url" not in target
            if through_connector is None or through_connector == via_connector:
                total += int(output.get("attempted") or 0)
        return total


def _database_full(run: _Run) -> Recommendation | None:
    if run.cause != "too_many_connections" or "max_connections" not in run.capacity:
        return None
    pool = int(run.figures.get("pool_size") or 0)
    at_rest, reserved = run.capacity["in_use_at_rest"], run.capacity["reserved"]
    demand = at_rest + run.floods() + pool + reserved
    value = math.ceil(demand * MARGIN)
    return Recommendation(
        "database_max_connections", value, MARGIN,
        f"{run.name}: {at_rest} sessions at rest + {run.floods()} flood connections + the "
        f"fresh instance's pool of {pool} + {reserved} reserved = {demand}, against "
        f"max_connections={run.capacity['max_connections']}",
        f"Cloud SQL: set the max_connections flag to {value} (gcloud sql instances patch "
        f"INSTANCE --database-flags=max_connections={value}), on a tier that allows it",
    )  # fmt: skip


def _connector_queue(run: _Run) -> Recommendation | None:
    through = run.floods(through_connector=True)
    instances = run.capacity.get("connector_instances")
    if run.cause != "connect_timeout" or not through or not instances:
        return None
    pool = int(run.figures.get("pool_size") or 0)
    at_rest = int(run.capacity.get("connector_active_at_rest") or 0)
    demand = at_rest + through + pool
    value = math.ceil(demand * MARGIN / instances)
    per_instance = run.figures.get("connector_connections_per_instance")
    return Recommendation(
        "connector_connections_per_instance", value, MARGIN,
        f"{run.name}: {at_rest} connections at rest + {through} flood connections + the "
        f"fresh instance's pool of {pool} = {demand} at once through {instances} instances "
        f"of {per_instance}",
        f"Serverless VPC Access: raise the connector's min instances so that "
        f"{math.ceil(demand * MARGIN)} connections fit at once without scaling, or move to "
        "a larger machine type (gcloud compute networks vpc-access connectors update "
        "CONNECTOR --min-instances=... --machine-type=e2-standard-4)",
    )  # fmt: skip


def _scaled_out_too_late(run: _Run) -> Recommendation | None:
    failure_at = next((o.get("failure_at") for _, o in run.outputs if o.get("failure_at")), None)
    scaled = next((o["event"] for _, o in run.outputs
                   if isinstance(o.get("event"), dict) and o["event"].get("event") == "scaled_out"),
                  None)  # fmt: skip
    if not failure_at or not scaled or not run.failed:
        return None
    gap = (
        datetime.fromisoformat(scaled["at"]) - datetime.fromisoformat(failure_at)
    ).total_seconds()
    if gap <= 0:
        return None
    needed = float(run.failed.get("elapsed_s") or 0) + gap
    value = math.ceil(needed * TIME_MARGIN)
    return Recommendation(
        "initialization_timeout_s", value, TIME_MARGIN,
        f"{run.name}: Phase 3 gave up after {run.failed.get('elapsed_s')}s, the connector "
        f"scaled out {gap:.2f}s later",
        f"Cloud Run: give the service an initialization timeout of {value}s (its "
        "environment), and a startup probe that waits as long",
    )  # fmt: skip


def _slow_schema(run: _Run) -> Recommendation | None:
    size, mbps = run.figures.get("schema_load_bytes"), run.figures.get("throttled_mbps")
    if run.cause != "slow_schema_query" or not size or not mbps:
        return None
    needed = size * 8 / (mbps * 1e6)
    value = math.ceil(needed * TIME_MARGIN)
    return Recommendation(
        "initialization_timeout_s", value, TIME_MARGIN,
        f"{run.name}: Phase 3 reads {size} bytes through a connector at {mbps} Mbit/s: "
        f"{needed:.1f}s",
        f"Cloud Run: give the service an initialization timeout of {value}s, or the "
        "connector more throughput (more instances, a larger machine type)",
    )  # fmt: skip


def _pool_too_small(run: _Run) -> Recommendation | None:
    storm = next((o for _, o in run.outputs if "pool_peak_utilisation" in o), None)
    if storm is None or not (storm.get("failed") or {}).get("pool_timeout"):
        return None
    startups = int(storm.get("startups") or run.figures.get("storm_startups") or 0)
    pool = int(run.figures.get("storm_pool_size") or storm.get("pool_size") or 0)
    value = max(0, math.ceil(startups * MARGIN) - pool)
    return Recommendation(
        "storm_max_overflow", value, MARGIN,
        f"{run.name}: {startups} startups at once on one pool of {pool} + "
        f"{run.figures.get('storm_max_overflow')}; {storm['failed']['pool_timeout']} waited "
        "past the pool timeout",
        f"the service's pool: max_overflow {value} beside pool_size {pool} (its environment), "
        "with max_connections room for them",
    )  # fmt: skip


RULES: tuple[Callable[[_Run], Recommendation | None], ...] = (
    _database_full, _connector_queue, _scaled_out_too_late, _slow_schema, _pool_too_small,
)  # fmt: skip


def _experiment_file(record: RunRecord) -> Path:
    """The experiment file a game day's journal came from (its summary says), else the
    shipped one of that name."""
    summary = record.path.parent / "summary.json"
    if summary.exists():
        try:
            entries = json.loads(summary.read_text()).get("experiments") or []
        except ValueError:
            entries = []
        for entry in entries:
            if entry.get("name") == record.experiment and entry.get("file"):
                return Path(entry["file"])
    return Path("experiments") / f"{record.experiment}.json"


def recommend(
    sources: Iterable[Path],
) -> tuple[list[Recommendation], dict[str, Path], list[str]]:
    """(recommendations, the reproduced experiments and their files, those no rule had
    an answer for) from the reproduced runs in `sources`; the latest run of each
    experiment counts."""
    latest: dict[str, RunRecord] = {}
    for record in read_journals(list(sources)).runs:
        kit = record.journal.get("startup_chaos_kit") or {}
        if kit.get("verdict") == "reproduced":
            latest[record.experiment] = record
    found: dict[str, Recommendation] = {}
    unanswered = []
    for name, record in sorted(latest.items()):
        answers = [r for rule in RULES if (r := rule(_Run(record))) is not None]
        if not answers:
            unanswered.append(name)
        for answer in answers:
            kept = found.get(answer.key)
            if kept is None or answer.value > kept.value:
                answer.experiments = sorted({name, *(kept.experiments if kept else [])})
                found[answer.key] = answer
            else:
                kept.experiments = sorted({*kept.experiments, name})
    answered = {name: _experiment_file(r) for name, r in latest.items() if name not in unanswered}
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
            console.print(f"verify {name}: reproduced -> {after}", highlight=False)
            results.append({"experiment": name, "before": "reproduced", "after": after,
                            "reason": kit.get("reason"), "journal": str(journal_path)})  # fmt: skip
    held = {r["experiment"] for r in results if r["after"] == "tolerated"}
    for recommendation in recommendations:
        recommendation.verified = set(recommendation.experiments) <= held
    return results


def remediation_var_file(
    recommendations: list[Recommendation], verification: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A var-file of the recommendations, with how each was found beside it, and the
    verification's outcome per experiment (or that it was not verified)."""
    return {
        "configuration": {r.key: r.value for r in recommendations},
        "recommendations": [asdict(r) for r in recommendations],
        "verification": verification if verification is not None else "not verified",
    }
