"""The Google Cloud actions and probes against a local fake of Google's APIs that
checks the exact requests: method, path, query and body, undo paths and API errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskit.actions.gcp.cloud_run import (
    force_cold_start,
    restore_service_vpc_access,
    use_vpc_connector,
)
from chaoskit.actions.gcp.cloud_sql import (
    restart_cloud_sql,
    restore_cloud_sql_max_connections,
    set_cloud_sql_max_connections,
)
from chaoskit.actions.gcp.vpc_connector import restore_vpc_connector, set_vpc_connector_scaling
from chaoskit.probes.gcp.cloud_run import cloud_run_status
from chaoskit.targets.gcp.cloud_run_flood import start_cloud_run_flood, stop_cloud_run_flood
from chaoskit.targets.gcp.logging import observe_cloud_run_startup
from chaoskit.targets.gcp.monitoring import cloud_sql_backends, connector_metrics
from chaoskit.targets.workers.flood_task import task_share
from tests.gcp_fake import TOKEN, FakeGoogle, private_key_pem, service_account

PROJECT, REGION = "netra-staging", "us-central1"
LOCATION = f"/v1/projects/{PROJECT}/locations/{REGION}"
CONNECTOR = f"{LOCATION}/connectors/staging-vpc-connector"
SERVICE = f"/v2/projects/{PROJECT}/locations/{REGION}/services/backend"
RUN_OPS = f"/v2/projects/{PROJECT}/locations/{REGION}/operations"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    yield fake
    fake.close()
    assert all(r.authorization == f"Bearer {TOKEN}" for r in fake.requests)


@pytest.fixture(scope="module")
def key_pem() -> str:
    return private_key_pem()


@pytest.fixture
def gcp(google: FakeGoogle, key_pem: str) -> dict:
    """The activities' keyword arguments: configuration aimed at the fake, and secrets."""
    endpoints = {
        api: google.url for api in ("vpcaccess", "run", "sqladmin", "monitoring", "logging")
    }
    return {
        "configuration": {"gcp_project_id": PROJECT, "gcp_region": REGION,
                          "gcp_api_endpoints": endpoints, "gcp_operation_poll_s": 0.01},
        "secrets": {"service_account_info": service_account(f"{google.url}token", key_pem)},
    }  # fmt: skip


# --- Serverless VPC Access --------------------------------------------------------------


def connector(machine: str = "e2-micro", low: int = 2, high: int = 10) -> dict:
    return {
        "name": CONNECTOR[4:],
        "machineType": machine,
        "minInstances": low,
        "maxInstances": high,
    }


def test_connector_scaling_patches_and_the_undo_restores_the_machine_type(
    google: FakeGoogle, gcp: dict
) -> None:
    google.on("GET", CONNECTOR, (200, connector()), (200, connector("e2-standard-4", 3)),
              (200, connector("e2-standard-4", 3)), (200, connector()))  # fmt: skip
    google.on("PATCH", CONNECTOR, (200, {"name": f"{LOCATION[4:]}/operations/op1", "done": False}))
    google.on("GET", f"{LOCATION}/operations/op1", (200, {"done": True}))
    after = set_vpc_connector_scaling("staging-vpc-connector", machine_type="e2-standard-4",
                                      min_instances=3, **gcp)  # fmt: skip
    assert after["machineType"] == "e2-standard-4"
    patch = next(r for r in google.requests if r.method == "PATCH")
    assert patch.query == {"updateMask": ["machineType,minInstances"], "alt": ["json"]}
    assert patch.body == {"machineType": "e2-standard-4", "minInstances": 3}

    google.requests.clear()
    restored = restore_vpc_connector("staging-vpc-connector", **gcp)
    assert restored == {"restored": True, "machine_type": "e2-micro",
                        "instances_not_restorable": "a connector never scales in"}  # fmt: skip
    patches = [r.body for r in google.requests if r.method == "PATCH"]
    assert patches == [{"machineType": "e2-micro"}]
    assert restore_vpc_connector("staging-vpc-connector", **gcp) == {"restored": False}


def test_connector_scale_in_is_refused_before_any_change(google: FakeGoogle, gcp: dict) -> None:
    google.on("GET", CONNECTOR, (200, connector(low=3, high=6)))
    with pytest.raises(ActivityFailed, match=r"^max_instances=4 is below the connector's 6: "):
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=4, **gcp)
    with pytest.raises(ActivityFailed, match=r"^machine_type='n1-standard-1': use one of"):
        set_vpc_connector_scaling("staging-vpc-connector", machine_type="n1-standard-1", **gcp)
    assert [m for m, _ in google.calls()] == ["GET", "GET"]  # nothing was patched
    assert restore_vpc_connector("staging-vpc-connector", **gcp) == {"restored": False}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, r"^reading VPC connector .*: permission denied: .* \(Permission 'vpcaccess"),
        (404, r"^reading VPC connector .*: not found: check the project, region and name"),
    ],
)
def test_api_errors_are_one_clear_line(
    google: FakeGoogle, gcp: dict, status: int, message: str
) -> None:
    google.on("GET", CONNECTOR, (status, {"error": {"code": status,
              "message": "Permission 'vpcaccess.connectors.get' denied" if status == 403
              else "Connector not found"}}))  # fmt: skip
    with pytest.raises(ActivityFailed, match=message) as failure:
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=10, **gcp)
    assert "\n" not in str(failure.value)


def test_an_unreachable_google_is_one_clear_line(gcp: dict) -> None:
    closed = FakeGoogle()
    closed.close()  # nothing listens there any more
    closed.server.server_close()
    configuration = {**gcp["configuration"], "gcp_api_endpoints": {"vpcaccess": closed.url}}
    with pytest.raises(ActivityFailed) as failure:
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=12,
                                  configuration=configuration, secrets=gcp["secrets"])  # fmt: skip
    assert str(failure.value) == (
        f"reading VPC connector {CONNECTOR[4:]}: Google Cloud is unreachable "
        "(ConnectionRefusedError): check the network, or gcp.api_endpoints if you set it"
    )


def test_a_failed_operation_is_reported(google: FakeGoogle, gcp: dict) -> None:
    google.on("GET", CONNECTOR, (200, connector(high=6)))
    google.on("PATCH", CONNECTOR, (200, {"name": f"{LOCATION[4:]}/operations/op9"}))
    google.on("GET", f"{LOCATION}/operations/op9",
              (200, {"done": True, "error": {"code": 9, "message": "quota exceeded"}}))  # fmt: skip
    with pytest.raises(ActivityFailed, match=r"the operation failed \(quota exceeded\)$"):
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=8, **gcp)
    restore_vpc_connector("staging-vpc-connector", **gcp)


# --- Cloud Run -------------------------------------------------------------------------------

BACKEND = {
    "name": SERVICE[4:],
    "latestCreatedRevision": "backend-00001",
    "latestReadyRevision": "backend-00001",
    "template": {"vpcAccess": {"connector": CONNECTOR[4:], "egress": "PRIVATE_RANGES_ONLY"}},
}
SMALL = f"projects/{PROJECT}/locations/{REGION}/connectors/tiny-connector"


def test_use_a_small_connector_and_restore_the_original(google: FakeGoogle, gcp: dict) -> None:
    small_access = {"connector": SMALL, "egress": "PRIVATE_RANGES_ONLY"}
    moved = {**BACKEND, "latestCreatedRevision": "backend-00002",
             "template": {"vpcAccess": small_access}}  # fmt: skip
    google.on("GET", SERVICE, (200, BACKEND), (200, moved), (200, moved), (200, BACKEND))
    google.on("PATCH", SERVICE, (200, {"name": f"{RUN_OPS[4:]}/op1"}))
    google.on("GET", f"{RUN_OPS}/op1", (200, {"done": False}), (200, {"done": True}))
    google.on("GET", f"{RUN_OPS}/op1", (200, {"done": True}))
    result = use_vpc_connector("backend", "tiny-connector", **gcp)
    assert result["vpc_access"]["connector"] == SMALL
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    assert patch.body["template"]["vpcAccess"] == {
        "connector": SMALL,
        "egress": "PRIVATE_RANGES_ONLY",
    }

    google.requests.clear()
    restored = restore_service_vpc_access("backend", **gcp)
    assert restored["restored"] is True
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    assert patch.body["template"]["vpcAccess"] == BACKEND["template"]["vpcAccess"]
    assert restore_service_vpc_access("backend", **gcp) == {"restored": False}


def test_force_cold_start_rolls_out_a_labelled_revision(google: FakeGoogle, gcp: dict) -> None:
    google.on(
        "GET", SERVICE, (200, BACKEND), (200, {**BACKEND, "latestCreatedRevision": "backend-00002"})
    )
    google.on("PATCH", SERVICE, (200, {"name": f"{RUN_OPS[4:]}/op2"}))
    google.on("GET", f"{RUN_OPS}/op2", (200, {"done": True}))
    result = force_cold_start("backend", **gcp)
    assert result["latest_created_revision"] == "backend-00002"
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    assert "chaos-kit-cold-start" in patch.body["template"]["labels"]
    assert patch.body["template"]["vpcAccess"] == BACKEND["template"]["vpcAccess"]  # kept


# --- Cloud SQL ---------------------------------------------------------------------------------

SQL = f"/v1/projects/{PROJECT}/instances/netra-staging-db"


def test_max_connections_flag_change_keeps_other_flags_and_undo_restores(
    google: FakeGoogle, gcp: dict
) -> None:
    flags = [
        {"name": "log_connections", "value": "on"},
        {"name": "max_connections", "value": "162"},
    ]
    google.on("GET", SQL, (200, {"settings": {"databaseFlags": flags}}))
    google.on("PATCH", SQL, (200, {"name": "op-1", "status": "PENDING"}))
    google.on("GET", f"/v1/projects/{PROJECT}/operations/op-1",
              (200, {"status": "RUNNING"}), (200, {"status": "DONE"}))  # fmt: skip
    result = set_cloud_sql_max_connections(50, "netra-staging-db", **gcp)
    assert result == {"max_connections": 50, "previous": "162"}
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    changed = [flags[0], {"name": "max_connections", "value": "50"}]
    assert patch.body == {"settings": {"databaseFlags": changed}}

    google.requests.clear()
    assert restore_cloud_sql_max_connections("netra-staging-db", **gcp) == {
        "restored": True, "max_connections": "162"}  # fmt: skip
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    assert patch.body == {"settings": {"databaseFlags": flags}}
    assert restore_cloud_sql_max_connections("netra-staging-db", **gcp) == {"restored": False}


def test_restart_waits_for_the_operation(google: FakeGoogle, gcp: dict) -> None:
    google.on("POST", f"{SQL}/restart", (200, {"name": "op-2", "status": "PENDING"}))
    google.on("GET", f"/v1/projects/{PROJECT}/operations/op-2", (200, {"status": "DONE"}))
    assert restart_cloud_sql("netra-staging-db", **gcp)["status"] == "DONE"
    assert google.calls() == [
        ("POST", f"{SQL}/restart"),
        ("GET", f"/v1/projects/{PROJECT}/operations/op-2"),
    ]


def test_bad_max_connections_is_refused_before_any_request(google: FakeGoogle, gcp: dict) -> None:
    with pytest.raises(ActivityFailed, match=r"^max_connections=5 is out of range"):
        set_cloud_sql_max_connections(5, "netra-staging-db", **gcp)
    assert google.requests == []


# --- the flood on Cloud Run Jobs ---------------------------------------------------------------

JOB = f"/v2/projects/{PROJECT}/locations/{REGION}/jobs/chaos-flood"


def _flood_job_routes(google: FakeGoogle, execution: str) -> None:
    google.on("GET", JOB, (404, {"error": {"code": 404, "message": "job not found"}}))
    google.on("POST", f"/v2/projects/{PROJECT}/locations/{REGION}/jobs",
              (200, {"name": f"{RUN_OPS[4:]}/create"}))  # fmt: skip
    google.on("GET", f"{RUN_OPS}/create", (200, {"done": True}))
    google.on(
        "POST", f"{JOB}:run", (200, {"name": f"{RUN_OPS[4:]}/run", "metadata": {"name": execution}})
    )
    google.on("POST", f"/v2/{execution}:cancel", (200, {"name": f"{RUN_OPS[4:]}/cancel"}))


def _ramped(task: int, established: int, refused: int, p95_s: float) -> dict:
    latency = {"p50_s": p95_s / 2, "p95_s": p95_s, "p99_s": p95_s, "max_s": p95_s}
    failed = {"too_many_connections": refused} if refused else {}
    return {"jsonPayload": {
        "event": "ramped", "task": task, "attempted": established + refused,
        "established": established, "failed": failed, "connect_latency": latency,
        "ramp_elapsed_s": 0.5 + task, "connections_per_s": 10.0}}  # fmt: skip


def test_flood_job_is_created_run_and_cancelled(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    # Logging has two tasks' lines at first, then all four (and a released line)
    early = [_ramped(0, 5, 0, 0.02), _ramped(1, 5, 0, 0.03)]
    late = [*early, _ramped(2, 3, 2, 0.05), _ramped(3, 0, 5, 0.01),
            {"jsonPayload": {"event": "released", "task": 0, "released": 5}}]  # fmt: skip
    google.on("POST", "/v2/entries:list", (200, {"entries": early}), (200, {"entries": late}))
    image = "us-docker.pkg.dev/p/chaos/flood-job:1"
    started = start_cloud_run_flood(
        20, image, "staging-database-url", "staging-vpc-connector", connections_per_task=6,
        hold_s=120, **gcp,
    )  # fmt: skip
    assert started["execution"] == execution and started["tasks"] == 4
    assert (started["attempted"], started["established"]) == (20, 13)
    assert started["failed"] == {"too_many_connections": 7}
    assert started["failed_share"] == 0.35
    assert started["connect_latency"]["p95_s"] == 0.05  # the worst task's
    create = next(r for r in google.requests if r.method == "POST" and r.path.endswith("/jobs"))
    assert create.query["jobId"] == ["chaos-flood"]
    template = create.body["template"]
    assert (template["taskCount"], template["parallelism"]) == (4, 4)
    container = template["template"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOOD_CONNECTIONS"]["value"] == "20"  # shared by the tasks
    assert env["FLOOD_DSN"]["valueSource"] == {
        "secretKeyRef": {"secret": "staging-database-url", "version": "latest"}
    }
    assert template["template"]["vpcAccess"]["connector"] == CONNECTOR[4:]
    logs = [r for r in google.requests if r.path == "/v2/entries:list"]
    assert len(logs) == 2
    assert (
        'labels."run.googleapis.com/execution_name" = "chaos-flood-abc"' in (logs[0].body["filter"])
    )

    assert stop_cloud_run_flood() == {"job": "chaos-flood", "running": True, "cancelled": execution}
    assert google.calls()[-1] == ("POST", f"/v2/{execution}:cancel")
    assert stop_cloud_run_flood() == {"job": "chaos-flood", "running": False}


def test_a_flood_whose_tasks_never_report_is_cancelled(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    google.on("POST", "/v2/entries:list", (200, {}))
    with pytest.raises(ActivityFailed, match=r"did not report their ramp within 2s \(0 of 1 did\)"):
        start_cloud_run_flood(
            5, "image", "secret", "staging-vpc-connector", connect_timeout_s=0.5,
            **{**gcp, "configuration": {**gcp["configuration"], "gcp_log_poll_s": 0.1,
                                                "gcp_flood_task_start_s": 1.0}},
        )  # fmt: skip
    assert google.calls()[-1] == ("POST", f"/v2/{execution}:cancel")


@pytest.mark.parametrize(("total", "tasks"), [(120, 5), (121, 5), (7, 3), (1, 1)])
def test_the_tasks_open_exactly_the_flood_between_them(total: int, tasks: int) -> None:
    shares = [task_share(total, index, tasks) for index in range(tasks)]
    assert sum(shares) == total and max(shares) - min(shares) <= 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"connections": 0}, "connections=0 must be a whole number >= 1"),
        ({"connections": 5000}, "needs 200 tasks of 25: at most 100 tasks"),
        ({"connections": 5, "job": "Chaos_Flood"}, "job='Chaos_Flood' is not a Cloud Run Job"),
    ],
)
def test_bad_flood_job_arguments_are_refused_before_any_request(
    google: FakeGoogle, gcp: dict, arguments: dict, message: str
) -> None:
    with pytest.raises(ActivityFailed, match=message):
        start_cloud_run_flood(
            image="image", dsn_secret="secret", connector="staging-vpc-connector",
            **arguments, **gcp,
        )  # fmt: skip
    assert google.requests == []


# --- probes ---------------------------------------------------------------------------------------


def test_connector_metrics_and_cloud_sql_backends_from_monitoring(
    google: FakeGoogle, gcp: dict
) -> None:
    google.on(
        "GET", f"/v3/projects/{PROJECT}/timeSeries",
        (200, {"timeSeries": [{"points": [{"value": {"distributionValue": {"mean": 0.82}}}]},
                              {"points": [{"value": {"distributionValue": {"mean": 0.64}}}]}]}),
        (200, {"timeSeries": [{"points": [{"value": {"int64Value": "2"}}]}]}),
        (200, {"timeSeries": [{"points": [{"value": {"int64Value": "120"}}]},
                              {"points": [{"value": {"int64Value": "25"}}]}]}),
    )  # fmt: skip
    assert connector_metrics("staging-vpc-connector", **gcp) == {
        "connector": "staging-vpc-connector", "utilisation": 0.82, "instances": 2}  # fmt: skip
    assert cloud_sql_backends("netra-staging-db", 162, **gcp) == {
        "instance": "netra-staging-db", "backends": 145, "max_connections": 162,
        "utilisation": round(145 / 162, 4)}  # fmt: skip
    filters = [r.query["filter"][0] for r in google.requests]
    assert filters[0] == ('metric.type = "vpcaccess.googleapis.com/connector/cpu/utilizations" AND '
                          'resource.labels.connector_name = "staging-vpc-connector" AND '
                          'resource.labels.location = "us-central1"')  # fmt: skip
    assert filters[2].startswith(
        'metric.type = "cloudsql.googleapis.com/database/postgresql/num_backends"'
    )


def test_startup_from_cloud_logging_has_the_local_shape(google: FakeGoogle, gcp: dict) -> None:
    def line(instance: str, **payload: object) -> dict:
        return {"labels": {"instanceId": instance}, "jsonPayload": payload}

    phases = [
        {"event": "phase", "phase": n, "name": name, "status": status, "elapsed_s": elapsed,
         "started_at": f"2026-11-21T02:00:0{n}+00:00", "cause": cause}
        for n, name, status, elapsed, cause in [
            (1, "init", "succeeded", 0.1, None), (2, "dependencies", "succeeded", 0.1, None),
            (3, "database", "timeout", 75.0, "connect_timeout"), (4, "cache", "blocked", 0.0, None),
            (5, "services", "blocked", 0.0, None), (6, "websocket", "blocked", 0.0, None),
            (7, "finalize", "blocked", 0.0, None)]
    ]  # fmt: skip
    entries = [line("old", event="phase", phase=1, status="succeeded")]
    entries += [line("new", **p) for p in phases]
    exit_line = {"labels": {"instanceId": "new"}, "textPayload": "Container called exit(3)."}
    entries += [line("new", event="lifespan", startup_failed=True), exit_line]
    google.on("POST", "/v2/entries:list", (200, {"entries": entries}))
    report = observe_cloud_run_startup("backend", since="2026-11-21T02:00:00+00:00", **gcp)
    assert report["instance"] == "new" and report["exit_code"] == 3
    assert report["startup_failed"] is True and report["ready"] is False
    assert [p["status"] for p in report["phases"]] == ["succeeded"] * 2 + ["timeout"] + [
        "blocked"
    ] * 4
    assert report["failed_phase"]["cause"] == "connect_timeout"
    assert report["failure_at"] == "2026-11-21T02:01:18+00:00"
    (request,) = google.requests
    assert request.body["resourceNames"] == [f"projects/{PROJECT}"]
    assert 'resource.labels.service_name = "backend"' in request.body["filter"]
    assert 'timestamp >= "2026-11-21T02:00:00+00:00"' in request.body["filter"]


def test_a_startup_still_under_way_is_not_ready(google: FakeGoogle, gcp: dict) -> None:
    entries = [
        {"labels": {"instanceId": "new"},
         "jsonPayload": {"event": "phase", "phase": n, "status": "succeeded"}}
        for n in (1, 2)
    ]  # fmt: skip
    google.on("POST", "/v2/entries:list", (200, {"entries": entries}))
    report = observe_cloud_run_startup("backend", since="2026-11-21T02:00:00+00:00", **gcp)
    assert report["ready"] is False and report["exit_code"] is None


def test_cloud_run_status_says_the_newest_revision_did_not_become_ready(
    google: FakeGoogle, gcp: dict
) -> None:
    failed = "Revision 'backend-00002' is not ready and cannot serve traffic."
    google.on(
        "GET",
        SERVICE,
        (200, {**BACKEND, "latestCreatedRevision": f"{SERVICE[4:]}/revisions/backend-00002"}),
    )
    google.on("GET", f"{SERVICE}/revisions/backend-00002", (200, {"conditions": [
        {"type": "Active", "state": "CONDITION_SUCCEEDED"},
        {"type": "Ready", "state": "CONDITION_FAILED", "message": failed}]}))  # fmt: skip
    google.on("GET", f"/v3/projects/{PROJECT}/timeSeries", (200, {"timeSeries": [
        {"points": [{"value": {"int64Value": "2"}}]},
        {"points": [{"value": {"int64Value": "1"}}]}]}))  # fmt: skip
    status = cloud_run_status("backend", **gcp)
    assert status == {
        "service": SERVICE[4:],
        "latest_created_revision": f"{SERVICE[4:]}/revisions/backend-00002",
        "latest_ready_revision": "backend-00001",
        "serving_latest": False,
        "revision_ready": False,
        "revision_message": failed,
        "instances": 3,
    }
    metrics = google.requests[-1]
    assert metrics.query["filter"] == [
        'metric.type = "run.googleapis.com/container/instance_count" AND '
        'resource.labels.service_name = "backend" AND resource.labels.location = "us-central1"'
    ]
