"""What the journals say: per run, and across runs and game days.

Everything here is read from structured journal data: the kit's section (verdict,
expectations, recovery, timeline) and the outputs of the kit's probes (startup
reports, floods, storms, connector states). Error text is used only as a fallback for
failed activities, as the test plan's analyser did.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoskit.report.agent import toolkit_outcome
from chaoskit.report.journals import GameDay, RunRecord

__all__ = [
    "CATEGORIES",
    "CHAIN_STEPS",
    "analyse_run",
    "before_and_after",
    "categories_across",
    "freshness",
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
_TEXT_RULES = (  # the test plan's analyser, for failed activities' messages only
    ("smd_phase3_timeout", ("phase 3", "timeout")),
    ("vpc_connector_capacity", ("connector",)),
    ("cloud_sql_pool_exhaustion", ("pool",)),
    ("fastapi_lifespan_breakdown", ("lifespan",)),
    ("container_exit_code_3", ("exit code 3",)),
)
STALE_AFTER_DAYS = 30


def _outputs(journal: dict[str, Any]) -> list[Any]:
    return [run.get("output") for run in journal.get("run") or []]


def startup_reports(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Every fresh instance's startup report (`observe_startup`, `cold_start`) in the run."""
    return [o for o in _outputs(journal) if isinstance(o, dict) and "phases" in o and "ready" in o]


def _markers(journal: dict[str, Any]) -> list[dict[str, str]]:
    """The moments a reader of the timeline looks for: the early warning, the
    connector's scale-out, Phase 3 giving up, and a stop condition's breach."""
    markers = []
    stops = (journal.get("startup_chaos_kit") or {}).get("stop_conditions") or {}
    breach = stops.get("stopped_by") if isinstance(stops, dict) else None
    if isinstance(breach, dict) and breach.get("at"):
        at = breach["at"]  # chaostoolkit-addons times its samples in naive UTC
        at = at if "+" in at[10:] or at.endswith("Z") else f"{at}+00:00"
        markers.append({"at": at, "label": f"stopped: {breach.get('condition')}"})
    for output in _outputs(journal):
        if not isinstance(output, dict):
            continue
        if output.get("warned_at"):
            markers.append({"at": output["warned_at"], "label": "early warning"})
        event = output.get("event")
        if isinstance(event, dict) and event.get("type") == "scaled_out" and event.get("at"):
            markers.append({"at": event["at"], "label": "connector scaled out"})
        if output.get("failure_at") and output.get("failed_phase"):
            phase = output["failed_phase"].get("phase")
            markers.append({"at": output["failure_at"], "label": f"Phase {phase} gave up"})
    return markers


def _repeated_starts(journal: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in _outputs(journal) if isinstance(o, dict) and "exit_codes" in o]


def _peaks(journal: dict[str, Any]) -> dict[str, float | None]:
    kit = journal.get("startup_chaos_kit") or {}
    connector, database, connect = [], [], []
    for sample in kit.get("timeline") or []:
        connector.append(sample.get("connector_utilisation"))
        database.append(sample.get("database_utilisation"))
    for output in _outputs(journal):
        if not isinstance(output, dict):
            continue
        if "utilisation" in output and "instances" in output:
            connector.append(output["utilisation"])
        database.append(output.get("pool_peak_utilisation"))
        indicators = output.get("indicators") or {}
        connector.append(indicators.get("vpc_connector_utilisation"))
        database.append(indicators.get("cloud_sql_pool_utilisation"))
        for key in ("attempt", "latency", "connect_latency"):
            connect.append((output.get(key) or {}).get("max_s"))

    def peak(values: list[Any]) -> float | None:
        numbers = [v for v in values if isinstance(v, int | float)]
        return max(numbers) if numbers else None

    return {"connector": peak(connector), "database": peak(database), "connect_s": peak(connect)}


def _categories(journal: dict[str, Any], peaks: dict[str, float | None]) -> list[str]:
    found: set[str] = set()
    reports = startup_reports(journal)
    repeated = _repeated_starts(journal)
    for report in reports:
        failed = report.get("failed_phase") or {}
        if failed.get("phase") == 3 and failed.get("status") == "timeout":
            found.add("smd_phase3_timeout")
        if failed.get("cause") in ("too_many_connections", "pool_timeout"):
            found.add("cloud_sql_pool_exhaustion")
        if report.get("startup_failed"):
            found.add("fastapi_lifespan_breakdown")
        if report.get("exit_code") == 3:
            found.add("container_exit_code_3")
        if report.get("ready") is False:
            found.add("golden_path_offline")
    for starts in repeated:
        if any(key.startswith("3:timeout") for key in starts.get("failed_phases", {})):
            found.add("smd_phase3_timeout")
        if starts.get("startup_failed"):
            found.add("fastapi_lifespan_breakdown")
        if starts.get("exit_codes", {}).get("3"):
            found.add("container_exit_code_3")
        if starts.get("ready", 1) < starts.get("starts", 0):
            found.add("golden_path_offline")
    for output in _outputs(journal):
        if isinstance(output, dict):
            failed = output.get("failed") if isinstance(output.get("failed"), dict) else {}
            if failed.get("too_many_connections") or failed.get("pool_timeout"):
                found.add("cloud_sql_pool_exhaustion")
    if (peaks["connector"] or 0) > 0.7:
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
                "observed": bool(evidence) and all(e["met"] for e in evidence),
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
        return f"{tolerance.get('path', '')} {tolerance.get('expect', '')}".strip()
    return "" if tolerance is None else str(tolerance)


def _steady_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if not state:
        return None
    return {
        "met": state.get("steady_state_met"),
        "probes": [
            {"name": p["activity"]["name"], "status": p.get("status"),
             "tolerance": _tolerance(p["activity"]), "met": p.get("tolerance_met")}
            for p in state.get("probes") or []
        ],
    }  # fmt: skip


def _as_the_toolkit_reports(journal: dict[str, Any]) -> dict[str, Any]:
    """What a reader of chaostoolkit-reporting looks for in a run: the steady state
    before and after with each probe's tolerance and whether it was met, the method's
    activities with status and duration, the experiment's declared contributions."""
    states = journal.get("steady_states") or {}
    return {
        "before": _steady_state(states.get("before")),
        "after": _steady_state(states.get("after")),
        "method": [
            {"name": r["activity"]["name"], "type": r["activity"].get("type"),
             "status": r.get("status"), "duration_s": round(r.get("duration") or 0.0, 3)}
            for r in journal.get("run") or []
        ],
        "rollbacks": [
            {"name": r["activity"]["name"], "status": r.get("status"),
             "duration_s": round(r.get("duration") or 0.0, 3)}
            for r in journal.get("rollbacks") or []
        ],
        "contributions": journal["experiment"].get("contributions") or {},
    }  # fmt: skip


def analyse_run(record: RunRecord) -> dict[str, Any]:
    journal = record.journal
    kit = journal.get("startup_chaos_kit") or {}
    expectations = kit.get("expectations") or []
    unmet = next((e for e in expectations if not e.get("met")), None)
    peaks = _peaks(journal)
    reports = startup_reports(journal)
    phase3 = [p["elapsed_s"] for r in reports for p in r.get("phases", []) if p.get("phase") == 3]
    return {
        "experiment": record.experiment,
        "title": journal["experiment"].get("title"),
        "gameday_id": record.gameday_id,
        "sweep_probe": record.sweep_probe,
        "journal": str(record.path),
        "started": journal.get("start"),
        "verdict": kit.get("verdict", "no verdict"),
        "reason": kit.get("reason"),
        "status": journal.get("status"),
        "duration_s": round(journal.get("duration") or 0.0, 2),
        "time_to_recover_s": (kit.get("recovery") or {}).get("time_to_recover_s"),
        "first_unmet": unmet
        and f"{unmet['name']}: expected {unmet['expected']}, observed {unmet.get('observed')!r}",
        "chain": _chain(expectations) if any(e.get("step") for e in expectations) else [],
        "categories": _categories(journal, peaks),
        "peaks": peaks,
        "phase3_elapsed_s": max(phase3) if phase3 else None,
        "toolkit": toolkit_outcome(journal, record.experiment, str(record.path)),
        "as_the_toolkit_reports": _as_the_toolkit_reports(journal),
        "figures": kit.get("figures") or {},
        "capacity": kit.get("capacity") or {},
        "exit_codes": sorted(
            {r["exit_code"] for r in reports if r.get("exit_code") is not None}
            | {int(k) for s in _repeated_starts(journal) for k in s["exit_codes"] if k.isdigit()}
        ),
        "startups": reports,
        "timeline": kit.get("timeline") or [],
        "markers": _markers(journal),
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
        last = max(good) if good else None
        days = (now - datetime.fromisoformat(last)).days if last else None
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
        rows.append({"experiment": name, "before": _side(before[name]),
                     "after": _side(after[name]), "changed": changed})  # fmt: skip
    return rows
