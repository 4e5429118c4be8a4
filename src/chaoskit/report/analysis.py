"""What the journals say: per run, and across runs and game days.

Everything here is read from structured journal data, checked first (journal_schema):
the kit's section (verdict, expectations, recovery, timeline, the run's figures and
capacity) and the outputs of the kit's activities (startup reports, floods, storms,
connector states). Error text is used only as a fallback for failed activities, as
the test plan's analyser did. Every figure is judged against the threshold of the run
it came from: the compressed ones on the embedded testbed, the real ones on staging.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit.kit.documents import displayed
from chaoskit.report.journal_schema import KIT_MODULE
from chaoskit.report.journals import GameDay, RunRecord

__all__ = [
    "CATEGORIES",
    "CHAIN_STEPS",
    "METRICS",
    "analyse_run",
    "before_and_after",
    "categories_across",
    "describe_unmet",
    "freshness",
    "history",
    "moment",
    "trends",
]

CHAIN_STEPS = {
    1: "VPC connector capacity pressure (> 70 %)",
    2: "Database connection delays (> 35 s in staging)",
    3: "Phase 3 timeout (> 75 s in staging)",
    4: "FastAPI lifespan breakdown, phases 4-7 blocked",
    5: "Container exit code 3",
    6: "Service offline until the pressure is removed",
}
CATEGORIES = (
    "smd_phase3_timeout",
    "vpc_connector_capacity",
    "cloud_sql_pool_exhaustion",
    "fastapi_lifespan_breakdown",
    "container_exit_code_3",
    "golden_path_offline",
)
# The test plan's expected metrics: what it says (in staging's figures), and the key of
# the run's own configuration that holds the threshold each run is judged against
METRICS = (
    ("vpc_connector_utilisation", "> 70 %", "connector_threshold", ">"),
    ("cloud_sql_pool_utilisation", "> 80 %", "pool_threshold", ">"),
    ("connection_establishment_time_s", "> 35 s", "connect_delay_threshold_s", ">"),
    ("startup_sequence_time_s", "> 75 s", "initialization_timeout_s", ">="),
    ("container_exit_code", "3", "failure_exit_code", "=="),
    ("golden_path_availability", "0 (offline)", None, "offline"),
)
_TEXT_RULES = (  # the test plan's analyser, for failed activities' messages only
    ("smd_phase3_timeout", ("phase 3", "timeout")),
    ("vpc_connector_capacity", ("connector",)),
    ("cloud_sql_pool_exhaustion", ("pool",)),
    ("fastapi_lifespan_breakdown", ("lifespan",)),
    ("container_exit_code_3", ("exit code 3",)),
)
STALE_AFTER_DAYS = 30


def describe_unmet(expectation: dict[str, Any]) -> str:
    """`name: expected E, observed O`, the observed value as JSON."""
    observed = displayed(expectation.get("observed"))
    return f"{expectation['name']}: expected {expectation.get('expected')}, observed {observed}"


def moment(text: str) -> datetime:
    """A journal's time, in UTC (Chaos Toolkit's naive times are UTC)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _outputs(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """The outputs of the kit's own activities in the method (checked by the schema);
    a user's probes are not read."""
    found = []
    for run in journal.get("run") or []:
        module = (run["activity"].get("provider") or {}).get("module") or ""
        if module.startswith(KIT_MODULE) and isinstance(run.get("output"), dict):
            found.append(run["output"])
    return found


def startup_reports(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Every fresh instance's startup report (`observe_startup`, `cold_start`) in the run."""
    return [
        o for o in _outputs(journal) if "phases" in o and "ready" in o and "exit_codes" not in o
    ]


def _repeated_starts(journal: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in _outputs(journal) if "exit_codes" in o]


def _database_phases(reports: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [p for r in reports for p in r.get("phases") or [] if p.get("name") == name]


def _markers(journal: dict[str, Any], database_phase: str) -> list[dict[str, str]]:
    """The moments a reader of the timeline looks for: the early warning, the
    connector's scale-out, the database phase giving up, and a stop condition's breach."""
    markers = []
    stops = (journal.get("startup_chaos_kit") or {}).get("stop_conditions") or {}
    breach = stops.get("stopped_by")
    if breach and breach.get("at"):
        markers.append(
            {"at": moment(breach["at"]).isoformat(), "label": f"stopped: {breach.get('condition')}"}
        )
    for output in _outputs(journal):
        if output.get("warned_at"):
            markers.append({"at": output["warned_at"], "label": "early warning"})
        event = output.get("event")
        if event and event.get("type") == "scaled_out" and event.get("at"):
            markers.append({"at": event["at"], "label": "connector scaled out"})
        failed = output.get("failed_phase")
        if output.get("failure_at") and failed:
            name = failed.get("name") or "a phase"
            what = "Phase 3" if name == database_phase == "database" else name
            markers.append({"at": output["failure_at"], "label": f"{what} gave up"})
    return markers


def _peak(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return max(numbers) if numbers else None


def _peaks(journal: dict[str, Any]) -> dict[str, float | None]:
    kit = journal.get("startup_chaos_kit") or {}
    samples = kit.get("timeline") or []
    connector = [s.get("connector_utilisation") for s in samples]
    database = [s.get("database_utilisation") for s in samples]
    connect: list[Any] = []
    for output in _outputs(journal):
        if "utilisation" in output and "instances" in output:
            connector.append(output["utilisation"])
        database.append(output.get("pool_peak_utilisation"))
        indicators = output.get("indicators") or {}
        connector.append(indicators.get("vpc_connector_utilisation"))
        database.append(indicators.get("cloud_sql_pool_utilisation"))
        for key in ("attempt", "latency", "connect_latency"):
            connect.append((output.get(key) or {}).get("max_s"))
    return {"connector": _peak(connector), "database": _peak(database), "connect_s": _peak(connect)}


def _categories(
    journal: dict[str, Any],
    peaks: dict[str, float | None],
    figures: dict[str, Any],
    database_phase: str,
) -> list[str]:
    found: set[str] = set()
    failure_code = figures.get("failure_exit_code", 3)
    threshold = figures.get("connector_threshold")
    reports = startup_reports(journal)
    repeated = _repeated_starts(journal)
    for report in reports + [r for s in repeated for r in s.get("reports") or []]:
        failed = report.get("failed_phase") or {}
        if failed.get("name") == database_phase and failed.get("status") == "timeout":
            found.add("smd_phase3_timeout")
        if failed.get("cause") in ("too_many_connections", "pool_timeout"):
            found.add("cloud_sql_pool_exhaustion")
        if report.get("startup_failed"):
            found.add("fastapi_lifespan_breakdown")
        if report.get("exit_code") == failure_code:
            found.add("container_exit_code_3")
        if report.get("ready") is False:
            found.add("golden_path_offline")
    for starts in repeated:
        if starts.get("startup_failed"):
            found.add("fastapi_lifespan_breakdown")
        if (starts.get("exit_codes") or {}).get(str(failure_code)):
            found.add("container_exit_code_3")
        if isinstance(starts.get("ready"), int) and starts["ready"] < starts.get("starts", 0):
            found.add("golden_path_offline")
    for output in _outputs(journal):
        failed = output.get("failed") or {}
        if failed.get("too_many_connections") or failed.get("pool_timeout"):
            found.add("cloud_sql_pool_exhaustion")
    if threshold is not None and (peaks["connector"] or 0) > threshold:
        found.add("vpc_connector_capacity")
    if ((journal.get("startup_chaos_kit") or {}).get("verdict")) == "not-recovered":
        found.add("golden_path_offline")
    for run in journal.get("run") or []:
        if run.get("status") == "failed":
            text = "".join(run.get("exception") or []).lower()
            found.update(c for c, words in _TEXT_RULES if all(w in text for w in words))
    return [c for c in CATEGORIES if c in found]


def _chain(expectations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps = []
    for step, title in CHAIN_STEPS.items():
        evidence = [e for e in expectations if e.get("step") == step]
        steps.append(
            {
                "step": step,
                "title": title,
                "observed": bool(evidence) and all(e.get("met") for e in evidence),
                "checked": bool(evidence),
                "evidence": [
                    {k: e.get(k) for k in ("name", "expected", "observed", "met")} for e in evidence
                ],
            }
        )
    return steps


def _tolerance(activity: dict[str, Any]) -> str:
    tolerance = activity.get("tolerance")
    if isinstance(tolerance, dict):
        return f"{displayed(tolerance.get('path', ''))} {displayed(tolerance.get('expect', ''))}"
    return "" if tolerance is None else displayed(tolerance)


def _steady_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if not state:
        return None
    return {
        "met": state.get("steady_state_met"),
        "probes": [
            {
                "name": p["activity"]["name"],
                "status": p.get("status"),
                "tolerance": _tolerance(p["activity"]),
                "met": p.get("tolerance_met"),
            }
            for p in state.get("probes") or []
        ],
    }


def _as_the_toolkit_reports(journal: dict[str, Any]) -> dict[str, Any]:
    """What a reader of chaostoolkit-reporting looks for in a run: the steady state
    before and after with each probe's tolerance and whether it was met, the method's
    activities with status and duration, the experiment's declared contributions."""
    states = journal.get("steady_states") or {}
    return {
        "before": _steady_state(states.get("before")),
        "after": _steady_state(states.get("after")),
        "method": [
            {
                "name": r["activity"]["name"],
                "type": r["activity"].get("type"),
                "status": r.get("status"),
                "duration_s": round(r.get("duration") or 0.0, 3),
            }
            for r in journal.get("run") or []
        ],
        "rollbacks": [
            {
                "name": r["activity"]["name"],
                "status": r.get("status"),
                "duration_s": round(r.get("duration") or 0.0, 3),
            }
            for r in journal.get("rollbacks") or []
        ],
        "contributions": journal["experiment"].get("contributions") or {},
    }


def _judged(observed: Any, threshold: Any, comparison: str) -> bool | None:
    """Whether `observed` meets `threshold` as the test plan compares them; None when
    either is missing (not judged)."""
    if observed is None or (threshold is None and comparison != "offline"):
        return None
    if comparison == ">":
        return observed > threshold
    if comparison == ">=":
        return observed >= threshold
    if comparison == "==":
        return threshold in observed
    return observed["starts"] > 0 and observed["ready"] == 0


def _run_metrics(
    figures: dict[str, Any],
    peaks: dict[str, float | None],
    database_elapsed: float | None,
    exit_codes: list[int],
    starts: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Each of the test plan's metrics for one run: its value, this run's threshold
    (from its own figures) and whether the value meets it."""
    observed = {
        "vpc_connector_utilisation": peaks["connector"],
        "cloud_sql_pool_utilisation": peaks["database"],
        "connection_establishment_time_s": peaks["connect_s"],
        "startup_sequence_time_s": database_elapsed,
        "container_exit_code": exit_codes or None,
        "golden_path_availability": starts if starts["starts"] else None,
    }
    metrics = {}
    for name, _, key, comparison in METRICS:
        threshold = figures.get(key) if key else None
        metrics[name] = {
            "observed": observed[name],
            "threshold": threshold,
            "threshold_key": key,
            "comparison": comparison,
            "met": _judged(observed[name], threshold, comparison),
        }
    return metrics


def _pressure(
    journal: dict[str, Any],
    figures: dict[str, Any],
    capacity: dict[str, Any],
    database: dict[str, Any] | None,
) -> dict[str, Any]:
    """The figures that decide the verdict, side by side: the flood against the room the
    database had, the connector's capacity and queue, the pool against its timeout, the
    database phase against its deadline."""
    outputs = _outputs(journal)
    samples = (journal.get("startup_chaos_kit") or {}).get("timeline") or []
    floods = [o for o in outputs if "established" in o and "attempted" in o]
    room = None
    if all(
        isinstance(capacity.get(k), int | float)
        for k in ("max_connections", "reserved", "in_use_at_rest")
    ):
        room = capacity["max_connections"] - capacity["reserved"] - capacity["in_use_at_rest"]
    states = [o for o in outputs if "capacity" in o and "utilisation" in o and "instances" in o]
    per_instance = capacity.get("connector_connections_per_instance")
    connector_capacity = _peak([s.get("capacity") for s in states])
    if connector_capacity is None and per_instance and capacity.get("connector_instances"):
        connector_capacity = capacity["connector_instances"] * per_instance
    storms = [o for o in outputs if "startups" in o and "pool_size" in o]
    return {
        "flood": {
            "established": sum(o.get("established") or 0 for o in floods) if floods else None,
            "attempted": sum(o.get("attempted") or 0 for o in floods) if floods else None,
            "room": room,
            # on staging the kit does not read the database's slots: the profile's figure
            "max_connections": capacity.get(
                "max_connections", figures.get("gcp_cloud_sql_max_connections")
            ),
            "reserved": capacity.get("reserved"),
            "in_use_at_rest": capacity.get("in_use_at_rest"),
            "database_peak_in_use": _peak([s.get("database_in_use") for s in samples]),
        },
        "connector": {
            "capacity": connector_capacity,
            "instances": _peak(
                [s.get("instances") for s in states] + [capacity.get("connector_instances")]
            ),
            "per_instance": per_instance,
            "peak_active": _peak(
                [s.get("connector_active") for s in samples] + [s.get("active") for s in states]
            ),
            "peak_waiting": _peak(
                [s.get("connector_waiting") for s in samples] + [s.get("waiting") for s in states]
            ),
            "queue_timeout_s": _peak(
                [(s.get("config") or {}).get("queue_timeout_s") for s in states]
            ),
        },
        "pool": {
            "pool_size": figures.get("pool_size"),
            "max_overflow": figures.get("max_overflow"),
            "pool_timeout_s": figures.get("pool_timeout_s"),
            "storm": {
                "startups": storms[0].get("startups"),
                "pool_size": storms[0].get("pool_size"),
                "max_overflow": storms[0].get("max_overflow"),
                "timed_out": (storms[0].get("failed") or {}).get("pool_timeout", 0),
                "timeout_s": storms[0].get("timeout_threshold_s"),
            }
            if storms
            else None,
        },
        "database_phase": database,
    }


def _database_phase(
    reports: list[dict[str, Any]], name: str, deadline: float | None
) -> dict[str, Any] | None:
    """The database phase of the startup that says most (the one that failed, else the
    last): its elapsed time against its deadline, status and cause."""
    if not reports:
        return None
    report = next((r for r in reports if r.get("failed_phase")), reports[-1])
    phase = next(iter(_database_phases([report], name)), None)
    return {
        "name": name,
        "status": (phase or {}).get("status") or "unreported",
        "elapsed_s": (phase or {}).get("elapsed_s"),
        "deadline_s": deadline if deadline is not None else report.get("initialization_timeout_s"),
        "cause": (phase or {}).get("cause"),
    }


def analyse_run(record: RunRecord) -> dict[str, Any]:
    journal = record.journal
    kit = record.kit
    figures = kit.get("figures") or {}
    capacity = kit.get("capacity") or {}
    expectations = kit.get("expectations") or []
    unmet = next((e for e in expectations if e.get("met") is False), None)
    peaks = _peaks(journal)
    reports = startup_reports(journal)
    repeated = _repeated_starts(journal)
    name = record.database_phase
    elapsed = [
        p["elapsed_s"]
        for p in _database_phases(
            reports + [r for s in repeated for r in s.get("reports") or []], name
        )
        if p.get("elapsed_s") is not None
    ]
    exit_codes = sorted(
        {r["exit_code"] for r in reports if r.get("exit_code") is not None}
        | {int(k) for s in repeated for k in s.get("exit_codes") or {} if k.isdigit()}
    )
    starts = {
        "starts": len(reports) + sum(s.get("starts", 0) for s in repeated),
        "ready": sum(1 for r in reports if r.get("ready") is True)
        + sum(s["ready"] for s in repeated if isinstance(s.get("ready"), int)),
    }
    deadline = figures.get("initialization_timeout_s")
    database = _database_phase(reports, name, deadline)
    return {
        "experiment": record.experiment,
        "title": journal["experiment"].get("title"),
        "gameday_id": record.gameday_id,
        "sweep_probe": record.sweep_probe,
        "journal": str(record.path),
        "started": journal.get("start"),
        "target": kit.get("target"),
        "verdict": kit.get("verdict", "no verdict"),
        "reason": kit.get("reason"),
        "status": journal.get("status"),
        "duration_s": round(journal.get("duration") or 0.0, 2),
        "time_to_recover_s": (kit.get("recovery") or {}).get("time_to_recover_s"),
        "first_unmet": describe_unmet(unmet) if unmet else None,
        "chain": _chain(expectations) if any(e.get("step") for e in expectations) else [],
        "categories": _categories(journal, peaks, figures, name),
        "peaks": peaks,
        "database_phase": name,
        "phase3_elapsed_s": max(elapsed) if elapsed else None,
        "metrics": _run_metrics(
            figures, peaks, max(elapsed) if elapsed else None, exit_codes, starts
        ),
        "pressure": _pressure(journal, figures, capacity, database),
        "as_the_toolkit_reports": _as_the_toolkit_reports(journal),
        "figures": figures,
        "capacity": capacity,
        "exit_codes": exit_codes,
        "startups": reports,
        "timeline": kit.get("timeline") or [],
        "markers": _markers(journal, name),
        "activities": [
            {"name": r["activity"]["name"], "start": r.get("start"), "end": r.get("end")}
            for r in (journal.get("run") or []) + (journal.get("rollbacks") or [])
        ],
    }


def categories_across(runs: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(c for run in runs for c in run["categories"])
    return {c: counts.get(c, 0) for c in CATEGORIES}


def trends(runs: list[dict[str, Any]], gamedays: list[str]) -> list[dict[str, Any]]:
    """Verdicts that changed between the last two game days."""
    if len(gamedays) < 2:
        return []
    previous, latest = gamedays[-2], gamedays[-1]

    def verdicts(gameday: str) -> dict[str, str]:
        return {r["experiment"]: r["verdict"] for r in runs if r["gameday_id"] == gameday}

    before, now = verdicts(previous), verdicts(latest)
    return [
        {"experiment": name, "before": before.get(name, "not run"), "now": verdict}
        for name, verdict in sorted(now.items())
        if before.get(name) != verdict
    ]


def history(
    runs: list[dict[str, Any]], gamedays: list[str], expected: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """Per experiment of the latest game day, its verdict game day by game day (oldest
    first), each marked as the suite expected it or not: the trend across nights."""
    if not gamedays:
        return []
    latest = {r["experiment"] for r in runs if r["gameday_id"] == gamedays[-1]}
    by_day = {(r["gameday_id"], r["experiment"]): r for r in runs if r["gameday_id"]}
    rows = []
    for name in sorted(latest):
        days = []
        for gameday in gamedays:
            run = by_day.get((gameday, name))
            if run is not None:
                want = expected.get(gameday, {}).get(name)
                days.append(
                    {
                        "gameday_id": gameday,
                        "verdict": run["verdict"],
                        "expected": want,
                        "as_expected": run["verdict"] == want if want else None,
                        "phase3_elapsed_s": run["phase3_elapsed_s"],
                    }
                )
        rows.append({"experiment": name, "days": days})
    return rows


def freshness(
    runs: list[dict[str, Any]], gamedays: list[GameDay], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per experiment: when it last gave the verdict its suite expected, and whether that
    is more than 30 days ago."""
    now = now or datetime.now(UTC)
    expected: dict[str, str] = {}
    for gameday in gamedays:
        expected.update(gameday.expected)
    rows = []
    for name in sorted({r["experiment"] for r in runs}):
        want = expected.get(name, "reproduced")
        good = [r["started"] for r in runs if r["experiment"] == name and r["verdict"] == want]
        last = max(good, key=moment) if good else None
        days = (now - moment(last)).days if last else None
        rows.append(
            {
                "experiment": name,
                "expected": want,
                "last_as_expected": last,
                "days_since": days,
                "stale": days is None or days > STALE_AFTER_DAYS,
            }
        )
    return rows


def _side(run: dict[str, Any]) -> dict[str, Any]:
    failed = next((s["failed_phase"] for s in run["startups"] if s.get("failed_phase")), None)
    return {
        "verdict": run["verdict"],
        "phase3_elapsed_s": run["phase3_elapsed_s"],
        "cause": (failed or {}).get("cause"),
        "max_connections": run["capacity"].get("max_connections"),
        "connector_instances": run["capacity"].get("connector_instances"),
        "journal": run["journal"],
    }


def before_and_after(runs: list[dict[str, Any]], gamedays: list[GameDay]) -> list[dict[str, Any]]:
    """Each experiment's latest run without a remediation beside its latest run with one,
    and the configuration that differs. A run had a remediation when its game day
    expected it `tolerated`, or `chaos gameday recommend --verify` ran it."""
    expected = {g.gameday_id: g.expected for g in gamedays}
    before: dict[str, dict[str, Any]] = {}
    after: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first: the latest of each kind wins
        if run["sweep_probe"]:
            continue
        remediated = Path(run["journal"]).parent.name.startswith("verify-") or (
            expected.get(run["gameday_id"] or "", {}).get(run["experiment"]) == "tolerated"
        )
        (after if remediated else before)[run["experiment"]] = run
    rows = []
    for name in sorted(before.keys() & after.keys()):
        was, now = before[name]["figures"], after[name]["figures"]
        changed = {
            key: [was.get(key), now.get(key)]
            for key in sorted(was.keys() | now.keys())
            if key != "run_started_at" and was.get(key) != now.get(key)
        }
        rows.append(
            {
                "experiment": name,
                "before": _side(before[name]),
                "after": _side(after[name]),
                "changed": changed,
            }
        )
    return rows
