"""The shipped experiments against staging, by switching profile and nothing else.

Google's control plane is the fake of tests/staging_fake.py, which checks every request;
what it runs is real: the reference service's cold starts against the embedded testbed
(standing in for Cloud SQL behind the connector), the flood job's tasks, PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaoskit.gameday.suite import load_suite
from chaoskit.kit.processes import pid_alive
from chaoskit.targets.deployment import without_staging_equivalent
from chaoskit.testbed.instances import service_settings
from chaoskit.testbed.lifecycle import testbed_down, testbed_endpoints, testbed_up
from chaoskit.testbed.profile import embedded_profile
from chaoskit.testbed.state import read_state
from tests.conftest import eventually, sessions
from tests.gcp_fake import TOKEN, FakeGoogle, private_key_pem, service_account
from tests.staging_fake import FLOOD_ACCOUNT, LOCATION, SERVICE, FakeStaging
from tests.test_testbed import chaos

REPO = Path(__file__).resolve().parents[1]
STAGING_PROFILE = REPO / "experiments" / "profiles" / "staging.json"
FLOOD_SECRET = "chaos-flood-database-url"


@pytest.fixture(scope="module")
def key_pem() -> str:
    return private_key_pem()


@pytest.fixture
def staging(
    testbed_home: Path, kit_dirs: Callable[[str], Path], key_pem: str
) -> Iterator[tuple[FakeStaging, dict[str, str]]]:
    """The fake staging, and the environment a user sets to run against it."""
    endpoints = testbed_endpoints(testbed_up(started_by="tests"))
    google = FakeGoogle()
    # the deployed service: compressed timings, through the connector, as the testbed's
    deployed = service_settings(
        "backend", endpoints["database_url"], initialization_timeout_s=3.0,
        connect_timeout_s=1.0, pool_size=5, max_overflow=5, pool_timeout_s=3.0,
        connect_retry_s=0.2,
    )  # fmt: skip
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
        yield fake, env
    finally:
        fake.close()
        google.close()
        testbed_down()
    assert google.requests and all(r.authorization == f"Bearer {TOKEN}" for r in google.requests)
    assert google.violations == []  # every request followed Google's specification


def layer(folder: Path, google: FakeGoogle, **configuration: object) -> Path:
    """A var-file to layer on the staging profile: Google's APIs at the fake (the `gcp`
    object is replaced whole, so it starts from the profile's), and `configuration`.
    Cloud SQL is the embedded testbed's PostgreSQL, when it is up: its max_connections
    is the one Monitoring's backends count against. The deployed service is a process on
    loopback: its latency takes the embedded testbed's floor."""
    profile = json.loads(STAGING_PROFILE.read_text())["configuration"]
    floor_ms = embedded_profile()["stop_conditions"]["latency_floor_ms"]
    stop_conditions = {**profile["stop_conditions"], "latency_floor_ms": floor_ms}
    configuration = {"stop_conditions": stop_conditions, **configuration}
    gcp = {**profile["gcp"], "operation_poll_s": 0.05, "log_poll_s": 0.1,
           "timeline_interval_s": 0.5, "api_endpoints": google.endpoints()}  # fmt: skip
    state = read_state()
    if state:
        gcp["cloud_sql_max_connections"] = state["postgres"]["max_connections"]
    path = folder / "at-the-fake.json"
    path.write_text(json.dumps({"configuration": {"gcp": gcp, **configuration}}))
    return path


RAISED = {"guardrails": {"max_database_connections": 170}}


@pytest.mark.slow
def test_phase3_timeout_reproduces_on_staging_by_switching_profile(
    staging: tuple[FakeStaging, dict[str, str]], testbed_home: Path, tmp_path: Path
) -> None:
    fake, env = staging
    journal_path = tmp_path / "journal.json"
    result = chaos(
        "run", "--var-file", str(STAGING_PROFILE),
        "--var-file", str(layer(tmp_path, fake.google, **RAISED)),
        "--journal-path", str(journal_path), "experiments/smd-phase3-timeout.json",
        home=testbed_home, timeout_s=300, **env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    journal = json.loads(journal_path.read_text())
    assert journal["startup_chaos_kit"]["verdict"] == "reproduced"
    runs = {r["activity"]["name"]: r["output"] for r in journal["run"] + journal["rollbacks"]}

    # the flood: a Cloud Run Job of ceil(170 / 25) tasks, behind the connector
    flood = runs["flood-database-connections"]
    assert flood["tasks"] == 7 and flood["attempted"] == 170
    assert flood["established"] > 0 and flood["failed"]["too_many_connections"] > 0
    (create,) = [r for r in fake.google.requests if r.method == "POST" and r.path.endswith("/jobs")]
    assert create.query["jobId"] == ["chaos-flood"]
    task = create.body["template"]["template"]
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
    steady = journal["steady_states"]["before"]["probes"][1]["output"]
    assert steady["ready"] is True and steady["rollout"]["succeeded"] is True
    patches = [r for r in fake.google.requests if r.method == "PATCH" and "/services/" in r.path]
    # every cold start ran the deployed image's digest, in a revision the kit named
    deployed = fake.service.revision(f"{SERVICE}-v1")["containerStatuses"]
    for running in fake.revisions:
        assert running.revision.startswith(f"{SERVICE}-chaos-")
        assert fake.service.revision(running.revision)["containerStatuses"] == deployed
    # steady state before, the fresh instance, and the steady state back after the rollback
    assert len(patches) == len(fake.revisions) >= 3
    assert journal["startup_chaos_kit"]["recovery"]["recovered"] is True

    # the timeline, from Cloud Monitoring: the flood shows in Cloud SQL's backends
    timeline = journal["startup_chaos_kit"]["timeline"]
    assert {s["connector_utilisation"] for s in timeline} == {0.3}
    assert max(s["database_in_use"] for s in timeline) >= 90

    # nothing left: every task ended, no flood session, no secret in the journal
    assert all(p.poll() is not None for p in fake.task_processes())
    assert eventually(lambda: sessions(env["ADMIN_DSN"], "chaos-") == 0, timeout_s=10)
    password = env["CHAOS_DIRECT_DATABASE_URL"].split(":")[2].split("@")[0]
    assert password not in journal_path.read_text()


def test_an_experiment_without_staging_equivalent_is_refused_before_any_request(
    testbed_home: Path, tmp_path: Path
) -> None:
    google = FakeGoogle()
    try:
        journal_path = tmp_path / "journal.json"
        result = chaos(
            "run", "--var-file", str(STAGING_PROFILE),
            "--var-file", str(layer(tmp_path, google)),
            "--journal-path", str(journal_path), "experiments/vpc-connector-throughput.json",
            home=testbed_home,
            CHAOS_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_DIRECT_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
        )  # fmt: skip
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
        "run", "--journal-path", str(journal_path), "experiments/smd-phase3-timeout.json",
        home=testbed_home, CHAOS_TARGET="stagging",
    )  # fmt: skip
    assert result.returncode == 1
    kit = json.loads(journal_path.read_text())["startup_chaos_kit"]
    assert kit["verdict"] == "aborted"
    assert "target='stagging' is unknown: use one of embedded, staging" in kit["reason"]
    assert not (testbed_home / "state.json").exists()


@pytest.mark.slow
def test_the_staging_game_day_holds_every_experiment_it_lists(
    staging: tuple[FakeStaging, dict[str, str]], testbed_home: Path, tmp_path: Path
) -> None:
    fake, env = staging
    experiment = json.loads((REPO / "experiments/monitoring-early-warning.json").read_text())
    # the fake deploys a service with compressed timings: so are the warning's thresholds
    compressed = {
        key: experiment["configuration"][key]["default"]
        for key in ("warning_horizon_s", "warning_lead_time_s")
    }
    journals = tmp_path / "journals"
    result = chaos(
        "gameday", "run", "--suite", "experiments/gameday-staging.toml",
        "--profile", str(layer(tmp_path, fake.google, **RAISED, **compressed)),
        "--journals", str(journals),
        home=testbed_home, timeout_s=900, **env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (summary_path,) = journals.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["target"] == "staging"
    assert [(e["name"], e["verdict"]) for e in summary["experiments"]] == [
        ("smd-phase3-timeout", "reproduced"),
        ("smd-cascade-blocking", "reproduced"),
        ("lifespan-exit-code", "reproduced"),
        ("monitoring-early-warning", "reproduced"),
    ]
    assert all(not pid_alive(p.pid) for p in fake.task_processes())
    assert eventually(lambda: sessions(env["ADMIN_DSN"], "chaos-") == 0, timeout_s=10)


def test_the_staging_suite_lists_every_experiment_that_can_run_on_staging() -> None:
    experiments = sorted((REPO / "experiments").glob("*.json"))
    capable = set()
    for path in experiments:
        experiment = json.loads(path.read_text())
        # the profile reaches only declared keys: each experiment is switchable
        assert experiment["configuration"]["target"]["key"] == "CHAOS_TARGET", path.name
        assert experiment["configuration"]["gcp"] == {}, path.name
        hypothesis = experiment.get("steady-state-hypothesis", {}).get("probes", [])
        providers = [a["provider"] for a in [*hypothesis, *experiment["method"],
                                             *experiment.get("rollbacks", [])]]  # fmt: skip
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
    FakeStaging(google, deployed, {FLOOD_SECRET: ""}, tmp_path, "postgresql://127.0.0.1:9/")
    google.deny("run.services.update")
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(service_account(f"{google.url}token", key_pem)))
    try:
        result = chaos(
            "gameday", "run", *args, "--suite", "experiments/gameday-staging.toml",
            "--profile", str(layer(tmp_path, google)), home=home,
            GOOGLE_APPLICATION_CREDENTIALS=str(key_file),
            CHAOS_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_DIRECT_DATABASE_URL="postgresql://app@127.0.0.1:9/app",
            CHAOS_SERVICE_URL="https://backend.invalid",
        )  # fmt: skip
    finally:
        google.close()
    assert google.violations == []
    changes = [r for r in google.requests
               if r.method != "GET" and not r.path.endswith(":testIamPermissions")]  # fmt: skip
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
        "the kit's account lacks run.services.update in project netra-staging: grant "
        "roles/run.developer (needed for rolling out cold starts)"
    )
    assert "lacks run.services.update" in result.stdout + result.stderr
    assert changes == []
