"""The shipped experiments against staging, by switching profile and nothing else.

Google's control plane is the fake of tests/staging_fake.py, which checks every request
and keeps Google's clock; what it runs is real: the reference service's cold starts
against the embedded testbed (standing in for Cloud SQL behind the connector), the flood
job's tasks, PostgreSQL. The rehearsal runs the staging game day on Google's clock and
the staging profile's durations, both divided by one time scale:

    .venv/bin/pytest tests/test_staging.py -k rehearsal
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from chaoskit.gameday.suite import load_suite
from chaoskit.kit.settings import embedded_profile
from chaoskit.probes.stop_conditions import slo_burn_rate
from chaoskit.report.report import build_report
from chaoskit.targets.deployment import without_staging_equivalent
from chaoskit.testbed.instances import service_settings
from chaoskit.testbed.lifecycle import testbed_down, testbed_endpoints, testbed_up
from chaoskit.testbed.state import read_state
from tests.conftest import eventually, sessions
from tests.gcp_fake import (
    TOKEN,
    FakeGoogle,
    GoogleClock,
    Limits,
    private_key_pem,
    service_account,
)
from tests.staging_fake import (
    FLOOD_ACCOUNT,
    LOCATION,
    PROJECT,
    SERVICE,
    SLO_NAME,
    FakeStaging,
    scaled_profile,
)
from tests.test_testbed import chaos

REPO = Path(__file__).resolve().parents[1]
STAGING_PROFILE = REPO / "experiments" / "profiles" / "staging.json"
FLOOD_SECRET = "chaos-flood-database-url"


@pytest.fixture(scope="module")
def key_pem() -> str:
    return private_key_pem()


# The rehearsal's time scale: Google's clock and the staging profile's durations run this
# many times faster (a minute of Monitoring's sampling is 4 s). Its floor is what this
# machine's own times allow, which do not scale: a process of the service takes 1-2 s
# to start, 15-30 s of staging's at this scale, where Cloud Run's own start takes 15.
REHEARSAL_TIME_SCALE = float(os.environ.get("STAGING_REHEARSAL_TIME_SCALE", "15"))
CLOUD_SQL_MAX_CONNECTIONS = 162  # db-custom-2-7680's, as the staging profile says


@pytest.fixture
def rehearsal(
    testbed_home: Path, kit_dirs: Callable[[str], Path], key_pem: str
) -> Iterator[tuple[FakeStaging, dict[str, str], dict]]:
    """The fake staging on Google's clock divided by REHEARSAL_TIME_SCALE, within
    Google's limits (an occasional 503), the staging profile's durations divided
    alike; the environment a user sets to run against it; that profile."""
    scale = REHEARSAL_TIME_SCALE
    profile = scaled_profile(json.loads(STAGING_PROFILE.read_text())["configuration"], scale)
    endpoints = testbed_endpoints(
        testbed_up(started_by="tests", max_connections=CLOUD_SQL_MAX_CONNECTIONS)
    )
    google = FakeGoogle(GoogleClock(time_scale=scale), Limits(unavailable_share=0.02))
    # the deployed service: staging's settings on the same clock, through the connector
    deployed = service_settings(
        "backend",
        endpoints["database_url"],
        **{
            key: profile[key]
            for key in (
                "initialization_timeout_s",
                "connect_timeout_s",
                "pool_size",
                "max_overflow",
                "pool_timeout_s",
                "connect_retry_s",
            )
        },
    )
    work = kit_dirs("staging")
    secrets = {FLOOD_SECRET: endpoints["direct_database_url"]}
    fake = FakeStaging(google, deployed, secrets, work, endpoints["admin_database_url"])
    key_file = work / "chaos-kit-staging.json"
    key_file.write_text(json.dumps(service_account(f"{google.url}token", key_pem)))
    env = {
        "CHAOS_DATABASE_URL": endpoints["database_url"],
        "CHAOS_DIRECT_DATABASE_URL": endpoints["direct_database_url"],
        "CHAOS_SERVICE_URL": endpoints["service_url"],
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "ADMIN_DSN": endpoints["admin_database_url"],
    }
    try:
        yield fake, env, profile
    finally:
        fake.close()
        google.close()
        testbed_down()
    assert google.requests and all(r.authorization == f"Bearer {TOKEN}" for r in google.requests)
    assert google.violations == []  # every request followed Google's specification


def layer(
    folder: Path, google: FakeGoogle, profile: dict | None = None, **configuration: object
) -> Path:
    """A var-file to layer on the staging profile: `profile` (the staging profile's
    configuration, by default as it is) with Google's APIs at the fake, and
    `configuration`. Cloud SQL is the embedded testbed's PostgreSQL, when it is up: its
    max_connections is the one Monitoring's backends count against. The deployed service
    is a process on loopback: its latency takes the embedded testbed's floor."""
    profile = profile or json.loads(STAGING_PROFILE.read_text())["configuration"]
    floor_ms = embedded_profile()["stop_conditions"]["latency_floor_ms"]
    stop_conditions = {**profile["stop_conditions"], "latency_floor_ms": floor_ms}
    gcp = {**profile["gcp"], "api_endpoints": google.endpoints()}
    state = read_state()
    if state:
        gcp["cloud_sql_max_connections"] = state["postgres"]["max_connections"]
    path = folder / "at-the-fake.json"
    path.write_text(
        json.dumps(
            {
                "configuration": {
                    **profile,
                    "stop_conditions": stop_conditions,
                    "gcp": gcp,
                    **configuration,
                }
            }
        )
    )
    return path


def raised(profile: dict) -> dict:
    """The profile's guardrails, raised for the floods, as the README says to."""
    return {"guardrails": {**profile["guardrails"], "max_database_connections": 170}}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_staging_game_day_rehearsal_on_googles_clock(
    rehearsal: tuple[FakeStaging, dict[str, str], dict], testbed_home: Path, tmp_path: Path
) -> None:
    """The whole staging game day against the fake, Google's clock and the profile's
    durations both divided by REHEARSAL_TIME_SCALE: every experiment comes out as the
    suite expects, with Monitoring's lags, Logging's delay, jobs and rollouts that take
    time, a read quota and 503s on."""
    fake, env, profile = rehearsal
    google = fake.google
    google.refuse_next(503, "run", method="PATCH")  # the first rollout, answered 503
    google.refuse_next(429, "logging", times=2)  # Logging's quota spent by someone else
    journals = tmp_path / "journals"
    result = chaos(
        "gameday",
        "run",
        "--suite",
        "experiments/gameday-staging.toml",
        "--profile",
        str(layer(tmp_path, google, profile, **raised(profile))),
        "--journals",
        str(journals),
        home=testbed_home,
        timeout_s=1200,
        **env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (summary_path,) = journals.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["target"] == "staging"
    expected = [
        (e.name, e.expect)
        for e in load_suite(REPO / "experiments/gameday-staging.toml").experiments
    ]
    assert [(e["name"], e["verdict"]) for e in summary["experiments"]] == expected
    assert {status for status, _ in google.refused} >= {429, 503}  # and the kit went on

    journal_path = next(journals.glob("*/smd-phase3-timeout.json"))
    journal = json.loads(journal_path.read_text())
    runs = {r["activity"]["name"]: r["output"] for r in journal["run"] + journal["rollbacks"]}
    # the report judges a staging run against the run's own figures, never the testbed's
    report = build_report([journal_path])
    assert report["banner"]["target"] == "staging"
    deadline = profile["initialization_timeout_s"]
    assert deadline != embedded_profile()["initialization_timeout_s"]
    assert report["pressure"][0]["database_phase"]["deadline_s"] == deadline
    metric = next(m for m in report["metrics"] if m["metric"] == "startup_sequence_time_s")
    assert metric["threshold"] == deadline
    # the flood: a Cloud Run Job of ceil(170 / 25) tasks, behind the connector
    flood = runs["flood-database-connections"]
    assert flood["tasks"] == 7 and flood["attempted"] == 170
    assert flood["established"] > 0 and flood["failed"]["too_many_connections"] > 0
    put = next(r for r in google.requests if r.method == "PATCH" and "/jobs/" in r.path)
    assert put.path.endswith("/jobs/chaos-flood") and put.query["allowMissing"] == ["true"]
    task = put.body["template"]["template"]
    env_vars = {e["name"]: e for e in task["containers"][0]["env"]}
    assert env_vars["FLOOD_CONNECTIONS"]["value"] == "170"
    assert env_vars["FLOOD_DSN"]["valueSource"]["secretKeyRef"]["secret"] == FLOOD_SECRET
    assert task["vpcAccess"]["connector"] == f"{LOCATION}/connectors/staging-vpc-connector"
    assert task["serviceAccount"] == FLOOD_ACCOUNT  # which may read the secret
    assert runs["stop-connection-flood"]["cancelled"] == flood["execution"]

    # the fresh instance: a cold start of Cloud Run, observed from Cloud Logging
    startup = runs["observe-fresh-instance-startup"]
    assert [p["status"] for p in startup["phases"]] == (
        ["succeeded", "succeeded", "timeout"] + ["blocked"] * 4
    )
    assert startup["failed_phase"]["cause"] == "too_many_connections"
    assert startup["exit_code"] == 3 and startup["startup_failed"] is True
    assert startup["rollout"]["succeeded"] is False
    assert "container failed to start" in startup["rollout"]["detail"]
    cold_start = runs["cold-start-fresh-instance"]
    assert cold_start["left_behind"]["restore"].startswith("gcloud run services update backend")
    steady = journal["steady_states"]["before"]["probes"][1]["output"]
    assert steady["ready"] is True and steady["rollout"]["succeeded"] is True
    # every cold start ran the deployed image's digest, in a revision the kit named
    deployed = fake.service.revision(f"{SERVICE}-v1")["containerStatuses"]
    for running in fake.revisions:
        assert running.revision.startswith(f"{SERVICE}-chaos-")
        assert fake.service.revision(running.revision)["containerStatuses"] == deployed
    assert journal["startup_chaos_kit"]["recovery"]["recovered"] is True
    # the timeline, from Cloud Monitoring: what it showed during the run (the flood's
    # backends show a minute or more after it began, maybe after the run)
    timeline = journal["startup_chaos_kit"]["timeline"]
    # two instances at 30 %: their 99th percentile, from Monitoring's buckets
    assert timeline
    # (a sample while Monitoring showed nothing of the run yet has none)
    connector = [s.get("connector_utilisation") for s in timeline]
    assert all(0.25 <= value <= 0.35 for value in connector if value is not None)
    in_use = [s.get("database_in_use") for s in timeline]
    assert all(0 < value <= CLOUD_SQL_MAX_CONNECTIONS for value in in_use if value is not None)

    # the early warning came from this run's flood, seen through Monitoring's lag, not
    # from the last run's still showing: no sooner than the flood's tasks started and
    # Cloud SQL's backends were sampled and shown
    warning = json.loads(next(journals.glob("*/monitoring-early-warning.json")).read_text())
    lead = next(
        e
        for e in warning["startup_chaos_kit"]["expectations"]
        if e["name"] == "warning_lead_time_s"
    )
    assert lead["met"] is True
    steps = {r["activity"]["name"]: r for r in warning["run"]}
    flood_began = datetime.fromisoformat(steps["ramping-flood"]["start"])
    warned = datetime.fromisoformat(steps["early-warning"]["output"]["warned_at"])
    clock = google.clock
    assert (warned - flood_began).total_seconds() >= clock.seconds(clock.task_start_s + 165)

    # nothing left: every task ended, no flood session, no secret in a journal
    assert all(p.poll() is not None for p in fake.task_processes())
    assert eventually(lambda: sessions(env["ADMIN_DSN"], "chaos-") == 0, timeout_s=10)
    password = env["CHAOS_DIRECT_DATABASE_URL"].split(":")[2].split("@")[0]
    assert all(password not in path.read_text() for path in journals.glob("*/*.json"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_slo_burning_its_budget_stops_a_staging_run_with_its_rollbacks(
    rehearsal: tuple[FakeStaging, dict[str, str], dict], testbed_home: Path, tmp_path: Path
) -> None:
    """The backend's availability SLO burns its budget 50 times too fast: once Monitoring
    shows it, a run watching it above a burn rate of 10 stops at its first judged sample,
    its flood job cancelled by the rollback."""
    fake, env, profile = rehearsal
    google = fake.google
    fake.failed_requests = 0.5
    gcp = {
        "gcp_project_id": PROJECT,
        "gcp_api_endpoints": google.endpoints(),
        **{f"gcp_{k}": v for k, v in profile["gcp"].items() if k.endswith("_s")},
    }
    secrets = {"service_account_file": env["GOOGLE_APPLICATION_CREDENTIALS"]}
    lookback_s = 300 / REHEARSAL_TIME_SCALE
    assert eventually(
        lambda: (
            slo_burn_rate(SLO_NAME, 10, lookback_s, configuration=gcp, secrets=secrets)["status"]
            == "breached"
        ),
        timeout_s=120,
    )  # Monitoring shows it: a state, not a duration
    condition = {"name": "checkout-slo", "slo": SLO_NAME, "threshold": 10, "lookback_s": lookback_s}
    watching = {
        "error_rate_pct": None,
        "latency_pct_of_baseline": None,
        "cpu_pct": None,
        "every_s": 0.5,
        "slo_burn_rates": [condition],
    }
    asked = len(google.requests)
    journal_path = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--var-file",
        str(layer(tmp_path, google, profile, **raised(profile), stop_conditions=watching)),
        "--journal-path",
        str(journal_path),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
        timeout_s=500,
        **env,
    )
    assert "Traceback" not in result.stdout + result.stderr
    journal = json.loads(journal_path.read_text())
    kit = journal["startup_chaos_kit"]
    assert (result.returncode, kit["verdict"], journal["status"]) == (1, "aborted", "interrupted")
    assert kit["reason"].startswith("stopped by the stop condition checkout-slo: ")
    breach = kit["stop_conditions"]["stopped_by"]
    assert breach["condition"] == "checkout-slo" and breach["sample"]["value"] > 10
    assert kit["stop_conditions"]["armed"]["checkout-slo"]["goal"] == 0.99
    # stopped during the method: whatever flood job ran, its rollback cancelled it
    rollback = journal["rollbacks"][0]
    assert (rollback["activity"]["name"], rollback["status"]) == (
        "stop-connection-flood",
        "succeeded",
    )
    cancelled = {e.name for e in fake.executions.values() if e.cancelled}
    assert cancelled == {e.name for e in fake.executions.values()}
    assert rollback["output"].get("cancelled") in cancelled | {None}
    assert eventually(lambda: all(p.poll() is not None for p in fake.task_processes()))
    assert eventually(lambda: sessions(env["ADMIN_DSN"], "chaos-") == 0, timeout_s=10)
    # chaosgcp's query, by the name Google gave the SLO
    burn = [
        r
        for r in google.requests[asked:]
        if r.path.endswith("/timeSeries")
        and r.query["filter"][0].startswith("select_slo_burn_rate")
    ]
    assert burn and burn[0].query["filter"] == [
        f'select_slo_burn_rate("{SLO_NAME.replace(PROJECT, fake.monitoring.number, 1)}", '
        f'"{lookback_s:g}s")'
    ]


def test_an_experiment_without_staging_equivalent_is_refused_before_any_request(
    testbed_home: Path, tmp_path: Path
) -> None:
    google = FakeGoogle()
    try:
        journal_path = tmp_path / "journal.json"
        result = chaos(
            "run",
            "--var-file",
            str(STAGING_PROFILE),
            "--var-file",
            str(layer(tmp_path, google)),
            "--journal-path",
            str(journal_path),
            "experiments/vpc-connector-throughput.json",
            home=testbed_home,
            CHAOS_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_DIRECT_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
        )
        assert result.returncode == 1
        kit = json.loads(journal_path.read_text())["startup_chaos_kit"]
        assert kit["verdict"] == "aborted"
        assert kit["reason"] == (
            "guardrail refused the run on staging: chaoskit.actions.connector.restore_connector, "
            "chaoskit.actions.connector.throttle_connector_throughput, "
            "chaoskit.probes.connector.connector_state "
            "have no staging equivalent (they act on the embedded testbed); run this "
            "experiment on the embedded testbed (experiments/gameday-staging.toml lists those "
            "that run on staging)"
        )
        assert "Traceback" not in result.stderr + result.stdout
        assert google.requests == []
        assert not (testbed_home / "state.json").exists()  # the testbed was not started
    finally:
        google.close()


def test_an_unknown_target_is_refused_in_one_line(testbed_home: Path, tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.json"
    result = chaos(
        "run",
        "--journal-path",
        str(journal_path),
        "experiments/smd-phase3-timeout.json",
        home=testbed_home,
        CHAOS_TARGET="stagging",
    )
    assert result.returncode == 1
    kit = json.loads(journal_path.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted"
    assert "target='stagging' is unknown: use one of embedded, staging" in kit["reason"]
    assert not (testbed_home / "state.json").exists()


def test_the_staging_suite_lists_every_experiment_that_can_run_on_staging() -> None:
    experiments = sorted((REPO / "experiments").glob("*.json"))
    capable = set()
    for path in experiments:
        experiment = json.loads(path.read_text())
        # the profile reaches the kit's keys without a declaration: each is switchable
        assert not {"target", "gcp"} & set(experiment.get("configuration") or {}), path.name
        hypothesis = experiment.get("steady-state-hypothesis", {}).get("probes", [])
        providers = [
            a["provider"]
            for a in [*hypothesis, *experiment["method"], *experiment.get("rollbacks", [])]
        ]
        if not any(without_staging_equivalent(p["module"], p["func"]) for p in providers):
            capable.add(path)
    suite = load_suite(REPO / "experiments" / "gameday-staging.toml")
    assert {e.path.resolve() for e in suite.experiments} == {p.resolve() for p in capable}
    assert [p.name for p in suite.profiles] == ["staging.json"]


def staging_game_day_without_a_role(
    home: Path, tmp_path: Path, key_pem: str, *args: str
) -> tuple[subprocess.CompletedProcess, list]:
    """`chaos gameday run ARGS` of the staging suite at a fake staging where the kit's
    account lacks run.services.update: its result, and every request Google received
    that would change something."""
    google = FakeGoogle()
    deployed = service_settings("backend", "postgresql://app@127.0.0.1:9/app")
    fake = FakeStaging(google, deployed, {FLOOD_SECRET: ""}, tmp_path, "postgresql://127.0.0.1:9/")
    google.deny("run.services.update")
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(service_account(f"{google.url}token", key_pem)))
    try:
        result = chaos(
            "gameday",
            "run",
            *args,
            "--suite",
            "experiments/gameday-staging.toml",
            "--profile",
            str(layer(tmp_path, google)),
            home=home,
            GOOGLE_APPLICATION_CREDENTIALS=str(key_file),
            CHAOS_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_DIRECT_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_SERVICE_URL="https://backend.invalid",
        )
    finally:
        fake.close()
        google.close()
    assert google.violations == []
    changes = [
        r
        for r in google.requests
        if r.method != "GET" and not r.path.endswith(":testIamPermissions")
    ]
    return result, changes


def test_a_staging_game_day_without_a_role_is_skipped_before_anything_changes(
    testbed_home: Path, tmp_path: Path, key_pem: str
) -> None:
    journals = tmp_path / "journals"
    result, changes = staging_game_day_without_a_role(
        testbed_home, tmp_path, key_pem, "--journals", str(journals)
    )
    assert result.returncode == 3, result.stdout + result.stderr
    (summary_path,) = journals.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "skipped" and summary["experiments"] == []
    assert summary["preflight"]["checks"]["google_cloud"] == (
        f"the kit's account lacks run.services.update on service {LOCATION}/services/backend: "
        "grant roles/run.developer on it, or in project netra-staging (needed for rolling out "
        "cold starts)"
    )
    assert "lacks run.services.update" in result.stdout + result.stderr
    assert changes == []
