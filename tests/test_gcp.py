"""The Google Cloud actions and probes against a local fake of Google's APIs that
checks every request against Google's published specification, answers as the real
APIs do (tests/google_cloud.py) on Google's clock compressed (`SCALE`: its minute of
sampling is a tenth of a second here), and lets each test check the exact requests:
method, path, query and body, undo paths and API errors."""

from __future__ import annotations

import importlib.metadata
import json
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chaoslib.exceptions import ActivityFailed
from packaging.version import Version

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
from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import GcpSettings
from chaoskit.probes.gcp.cloud_run import cloud_run_status
from chaoskit.probes.stop_conditions import alert_policy_open, database_cpu_sustained, slo_burn_rate
from chaoskit.targets.flood.cloud_run_job import start_cloud_run_flood, stop_cloud_run_flood
from chaoskit.targets.flood.cloud_run_task import task_share
from chaoskit.targets.gcp.access import permissions_for, staging_access_problems
from chaoskit.targets.gcp.api import GoogleApiError, call, gcp_client
from chaoskit.targets.gcp.cloud_run import begin_cold_start, get_service
from chaoskit.targets.gcp.logging import observe_cloud_run_startup, wait_for_cloud_run_startup
from chaoskit.targets.gcp.monitoring import (
    CONNECTOR_CPU,
    CONNECTOR_INSTANCES,
    RUN_INSTANCES,
    SQL_BACKENDS,
    SQL_CPU,
    cloud_sql_backends,
    connector_metrics,
)
from chaoskit.verification.stop_conditions import (
    StopConditions,
    arm_stop_conditions,
    settle_stop_conditions,
)
from tests.conftest import REPO, eventually
from tests.gcp_fake import (
    TOKEN,
    FakeGoogle,
    GoogleClock,
    Request,
    error,
    private_key_pem,
    service_account,
)
from tests.google_cloud import (
    REQUESTS,
    AlertPolicy,
    CloudLogging,
    CloudMonitoring,
    CloudRunService,
    VpcConnector,
)
from tests.google_spec import VERSIONS, spec

# Google's clock as the kit assumes it (its settings' defaults), which the fake runs faster
GOOGLE_SECONDS = {
    name: field.default
    for name, field in GcpSettings.model_fields.items()
    if name.endswith("_s") and name != "timeline_interval_s"
}
PROJECT, REGION = "netra-staging", "us-central1"
LOCATION = f"/v1/projects/{PROJECT}/locations/{REGION}"
CONNECTOR = f"{LOCATION}/connectors/staging-vpc-connector"
SERVICE = f"/v2/projects/{PROJECT}/locations/{REGION}/services/backend"
RUN_OPS = f"/v2/projects/{PROJECT}/locations/{REGION}/operations"


# Google's clock here: a minute of it is 0.1 s, Monitoring's 165 s lag 0.275 s
SCALE = 600.0


def scaled(google_s: float) -> float:
    """A duration of Google's, or of the staging profile's, on the tests' clock."""
    return google_s / SCALE


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle(GoogleClock(time_scale=SCALE))
    yield fake
    fake.close()
    assert all(r.authorization == f"Bearer {TOKEN}" for r in fake.requests)
    assert fake.violations == []  # every request the kit sent follows Google's specification


@pytest.fixture(scope="module")
def key_pem() -> str:
    return private_key_pem()


@pytest.fixture
def gcp(google: FakeGoogle, key_pem: str) -> dict:
    """The activities' keyword arguments: configuration aimed at the fake, and secrets."""
    timing = {f"gcp_{name}": scaled(seconds) for name, seconds in GOOGLE_SECONDS.items()}
    return {
        "configuration": {
            "gcp_project_id": PROJECT,
            "gcp_region": REGION,
            "gcp_api_endpoints": google.endpoints(),
            **timing,
        },
        "secrets": {"service_account_info": service_account(f"{google.url}token", key_pem)},
    }


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
    vpc = VpcConnector(google, CONNECTOR[4:])
    after = set_vpc_connector_scaling(
        "staging-vpc-connector", machine_type="e2-standard-4", min_instances=3, **gcp
    )
    assert after["machineType"] == "e2-standard-4" and after["minInstances"] == 3
    patch = next(r for r in google.requests if r.method == "PATCH")
    # both bounds, always: the API checks min < max on what it is sent
    assert patch.query == {"updateMask": ["minInstances,maxInstances,machineType"], "alt": ["json"]}
    assert patch.body == {"minInstances": 3, "maxInstances": 10, "machineType": "e2-standard-4"}

    google.requests.clear()
    restored = restore_vpc_connector("staging-vpc-connector", **gcp)
    assert restored == {
        "restored": True,
        "machine_type": "e2-micro",
        "instances_not_restorable": "a connector never scales in",
    }
    # the machine type alone would be refused (min 0 is not below max 0): the bounds as
    # they are now go with it
    patches = [r.body for r in google.requests if r.method == "PATCH"]
    assert patches == [{"minInstances": 3, "maxInstances": 10, "machineType": "e2-micro"}]
    assert vpc.connector["machineType"] == "e2-micro" and vpc.connector["minInstances"] == 3
    assert restore_vpc_connector("staging-vpc-connector", **gcp) == {"restored": False}


def test_the_fake_connector_refuses_a_machine_type_sent_alone(
    google: FakeGoogle, gcp: dict
) -> None:
    """What restore_vpc_connector once sent."""
    VpcConnector(google, CONNECTOR[4:])
    client = gcp_client("vpcaccess", "v1", gcp["configuration"], gcp["secrets"])
    connectors = client.projects().locations().connectors()
    alone = connectors.patch(
        name=CONNECTOR[4:], updateMask="machineType", body={"machineType": "e2-micro"}
    )
    with pytest.raises(GoogleApiError, match="must be at least 2 and less than max_instances"):
        call(alone, "restoring")


def test_connector_scale_in_is_refused_before_any_change(google: FakeGoogle, gcp: dict) -> None:
    VpcConnector(google, CONNECTOR[4:], low=3, high=6)
    with pytest.raises(ActivityFailed, match=r"^max_instances=4 is below the connector's 6: "):
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=4, **gcp)
    with pytest.raises(ActivityFailed, match=r"^machine_type='n1-standard-1': use one of"):
        set_vpc_connector_scaling("staging-vpc-connector", machine_type="n1-standard-1", **gcp)
    assert [m for m, _ in google.calls()] == ["GET", "GET"]  # nothing was patched
    assert restore_vpc_connector("staging-vpc-connector", **gcp) == {"restored": False}


def test_a_connector_of_a_shared_vpc_host_project_is_named_in_full(
    google: FakeGoogle, gcp: dict
) -> None:
    host = "projects/network-host/locations/us-central1/connectors/shared-connector"
    VpcConnector(google, host, high=6)
    after = set_vpc_connector_scaling(host, max_instances=8, **gcp)
    assert after["maxInstances"] == 8
    assert {r.path for r in google.requests if r.method == "PATCH"} == {f"/v1/{host}"}
    restore_vpc_connector(host, **gcp)


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
    google.on(
        "GET",
        CONNECTOR,
        (
            status,
            {
                "error": {
                    "code": status,
                    "message": "Permission 'vpcaccess.connectors.get' denied"
                    if status == 403
                    else "Connector not found",
                }
            },
        ),
    )
    with pytest.raises(ActivityFailed, match=message) as failure:
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=10, **gcp)
    assert "\n" not in str(failure.value)


def test_an_unreachable_google_is_one_clear_line(gcp: dict) -> None:
    closed = FakeGoogle()
    closed.close()  # nothing listens there any more
    closed.server.server_close()
    configuration = {**gcp["configuration"], "gcp_api_endpoints": closed.endpoints("vpcaccess")}
    with pytest.raises(ActivityFailed) as failure:
        set_vpc_connector_scaling(
            "staging-vpc-connector",
            max_instances=12,
            configuration=configuration,
            secrets=gcp["secrets"],
        )
    assert str(failure.value) == (
        f"reading VPC connector {CONNECTOR[4:]}: Google Cloud is unreachable "
        "(ConnectionRefusedError): check the network, or gcp.api_endpoints if you set it"
    )


def test_a_failed_operation_is_reported(google: FakeGoogle, gcp: dict) -> None:
    google.on("GET", CONNECTOR, (200, connector(high=6)))
    google.on("PATCH", CONNECTOR, (200, {"name": f"{LOCATION[4:]}/operations/op9"}))
    google.on(
        "GET",
        f"{LOCATION}/operations/op9",
        (200, {"done": True, "error": {"code": 9, "message": "quota exceeded"}}),
    )
    with pytest.raises(ActivityFailed, match=r"the operation failed \(quota exceeded\)$"):
        set_vpc_connector_scaling("staging-vpc-connector", max_instances=8, **gcp)
    restore_vpc_connector("staging-vpc-connector", **gcp)


# --- Cloud Run -------------------------------------------------------------------------------

RUN_LOCATION = f"projects/{PROJECT}/locations/{REGION}"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/backend/api:latest"
VPC_ACCESS = {"connector": CONNECTOR[4:], "egress": "PRIVATE_RANGES_ONLY"}
SMALL = f"{RUN_LOCATION}/connectors/tiny-connector"


@pytest.fixture
def backend(google: FakeGoogle) -> CloudRunService:
    """The service as `gcloud run deploy --revision-suffix=v1` leaves it."""
    return CloudRunService(google, RUN_LOCATION, "backend", IMAGE, vpc_access=VPC_ACCESS)


def _patches(google: FakeGoogle) -> list[Request]:
    return [r for r in google.requests if r.method == "PATCH"]


def test_use_a_small_connector_and_restore_the_original(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    result = use_vpc_connector("backend", "tiny-connector", **gcp)
    assert result["vpc_access"]["connector"] == SMALL
    (patch,) = _patches(google)
    # only what changes: a revision of the kit's naming, the serving image, the connector
    assert patch.query["updateMask"] == ["template.revision,template.containers,template.vpcAccess"]
    assert patch.body["template"]["vpcAccess"] == {
        "connector": SMALL,
        "egress": "PRIVATE_RANGES_ONLY",
    }
    assert backend.service["template"]["vpcAccess"]["connector"] == SMALL

    google.requests.clear()
    restored = restore_service_vpc_access("backend", **gcp)
    assert restored["restored"] is True
    assert backend.service["template"]["vpcAccess"] == VPC_ACCESS
    assert restored["latest_ready_revision"] == restored["latest_created_revision"]
    assert restore_service_vpc_access("backend", **gcp) == {"restored": False}


def test_cold_starts_run_the_serving_image_in_revisions_of_their_own(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    serving = backend.revision(backend.service["latestReadyRevision"])
    (deployed,) = [status["imageDigest"] for status in serving["containerStatuses"]]
    backend.push(IMAGE)  # a newer :latest since the deployment
    revisions = []
    for _ in range(2):  # the service names its revision (backend-v1): no 409, twice
        result = force_cold_start("backend", **gcp)
        assert result["latest_ready_revision"] == result["latest_created_revision"]
        revisions.append(backend.revision(result["latest_created_revision"]))
    for revision in revisions:
        assert revision["name"].rsplit("/", 1)[-1].startswith("backend-chaos-")
        assert [s["imageDigest"] for s in revision["containerStatuses"]] == [deployed]
        assert "chaos-kit-cold-start" in revision["labels"]
        assert revision["vpcAccess"] == VPC_ACCESS  # untouched: not in the mask
    assert revisions[0]["name"] != revisions[1]["name"]
    for patch in _patches(google):
        assert patch.query["updateMask"] == [
            "template.revision,template.containers,template.labels"
        ]
        assert set(patch.body) == {"template"}


def test_a_service_sent_back_whole_is_refused_for_its_revision_name_as_cloud_run_does(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    """What the kit once sent: the `services.get` answer with a new label. Its output-only
    fields are ignored, as AIP-203 says; the revision name it carries gets the 409."""
    client = gcp_client("run", "v2", gcp["configuration"], gcp["secrets"])
    services = client.projects().locations().services()
    answer = call(services.get(name=backend.name), "reading")
    answer["template"]["labels"] = {"chaos-kit-cold-start": "1"}
    assert "latestReadyRevision" in answer
    with pytest.raises(GoogleApiError) as conflict:
        call(services.patch(name=backend.name, body=answer), "updating Cloud Run service")
    assert conflict.value.status == 409 and conflict.value.reason == "ALREADY_EXISTS"
    assert str(conflict.value) == (
        "updating Cloud Run service: conflict: what the request names already exists in "
        "another form, or it changed since it was read (Revision named 'backend-v1' with "
        "different configuration already exists.)"
    )
    assert google.violations == []  # output-only fields are no violation


def test_a_cold_start_says_what_it_leaves_behind_and_how_to_restore_it(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    result = force_cold_start("backend", **gcp)
    left = result["left_behind"]
    assert left["revision_name"].startswith("backend-chaos-") and left["traffic"] is None
    (image,) = left["images"]
    assert "@sha256:" in image and "chaos-kit-cold-start" in left["labels"]
    assert left["restore"] == (
        f"gcloud run services update backend --project={PROJECT} --region={REGION} "
        f"--image={IMAGE} --remove-labels=chaos-kit-cold-start"
    )
    assert backend.service["template"]["containers"][0]["image"] == image


def test_a_service_whose_traffic_is_pinned_is_not_moved_and_its_cold_start_says_so(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    backend.pin_traffic("backend-v1")
    with pytest.raises(ActivityFailed, match=r"sends its traffic to backend-v1, not to the latest"):
        use_vpc_connector("backend", "tiny-connector", **gcp)
    assert _patches(google) == []  # refused before any change
    assert restore_service_vpc_access("backend", **gcp) == {"restored": False}
    result = force_cold_start("backend", **gcp)
    assert result["left_behind"]["traffic"] == (
        f"traffic is pinned to backend-v1: revision {result['left_behind']['revision_name']} "
        "serves no request"
    )


def test_a_rollout_still_running_when_the_wait_ends_is_not_a_failure(
    google: FakeGoogle, gcp: dict
) -> None:
    ready = threading.Event()  # the revision's instance becomes ready when the test says
    CloudRunService(
        google,
        RUN_LOCATION,
        "backend",
        IMAGE,
        start=lambda revision: lambda: {"done": ready.is_set()},
    )
    cold = begin_cold_start("phase3-candidate", "backend", **gcp)
    still = cold.finish(timeout_s=scaled(60))
    assert still["succeeded"] is None and "did not finish" in still["detail"]
    ready.set()
    assert eventually(lambda: cold.finish(timeout_s=scaled(60))["succeeded"] is True)


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
    google.on(
        "GET",
        f"/v1/projects/{PROJECT}/operations/op-1",
        (200, {"status": "RUNNING"}),
        (200, {"status": "DONE"}),
    )
    result = set_cloud_sql_max_connections(50, "netra-staging-db", **gcp)
    assert result == {"max_connections": 50, "previous": "162"}
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    changed = [flags[0], {"name": "max_connections", "value": "50"}]
    assert patch.body == {"settings": {"databaseFlags": changed}}

    google.requests.clear()
    assert restore_cloud_sql_max_connections("netra-staging-db", **gcp) == {
        "restored": True,
        "max_connections": "162",
    }
    (patch,) = [r for r in google.requests if r.method == "PATCH"]
    assert patch.body == {"settings": {"databaseFlags": flags}}
    assert restore_cloud_sql_max_connections("netra-staging-db", **gcp) == {"restored": False}


def test_a_failed_cloud_sql_operation_says_googles_words(google: FakeGoogle, gcp: dict) -> None:
    """Cloud SQL's operations carry their errors as a list, not a message."""
    google.on("POST", f"{SQL}/restart", (200, {"name": "op-3", "status": "PENDING"}))
    google.on(
        "GET",
        f"/v1/projects/{PROJECT}/operations/op-3",
        (
            200,
            {
                "status": "DONE",
                "error": {
                    "kind": "sql#operationErrors",
                    "errors": [
                        {
                            "kind": "sql#operationError",
                            "code": "INTERNAL_ERROR",
                            "message": "The instance is being maintained.",
                        },
                        {
                            "kind": "sql#operationError",
                            "code": "RETRY",
                            "message": "Try again later.",
                        },
                    ],
                },
            },
        ),
    )
    with pytest.raises(ActivityFailed) as failure:
        restart_cloud_sql("netra-staging-db", **gcp)
    assert str(failure.value) == (
        "restarting Cloud SQL instance netra-staging-db: the operation failed (The instance "
        "is being maintained.; Try again later.)"
    )


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
FLOOD_ACCOUNT = f"chaos-flood@{PROJECT}.iam.gserviceaccount.com"


def _flood_job_routes(
    google: FakeGoogle, execution: str, job: dict | None = None, ends_after_polls: int = 1
) -> None:
    """Cloud Run Jobs for one job (`job`, or none yet): its execution ends (has a
    `completionTime`) once cancelled and read `ends_after_polls` times."""
    missing = (404, {"error": {"code": 404, "message": "job not found"}})
    google.on("GET", JOB, (200, job) if job else missing)
    google.on("PATCH", JOB, (200, {"name": f"{RUN_OPS[4:]}/put"}))
    google.on("GET", f"{RUN_OPS}/put", (200, {"done": True}))
    google.on(
        "POST", f"{JOB}:run", (200, {"name": f"{RUN_OPS[4:]}/run", "metadata": {"name": execution}})
    )
    google.on("POST", f"/v2/{execution}:cancel", (200, {"name": f"{RUN_OPS[4:]}/cancel"}))
    running = (200, {"name": execution})
    ended = (200, {"name": execution, "completionTime": "2026-11-21T02:05:00Z"})
    google.on("GET", f"/v2/{execution}", *[running] * ends_after_polls, ended)


def _ramped(task: int, established: int, refused: int, p95_s: float) -> dict:
    latency = {"p50_s": p95_s / 2, "p95_s": p95_s, "p99_s": p95_s, "max_s": p95_s}
    failed = {"too_many_connections": refused} if refused else {}
    return {
        "insertId": f"ramp-{task}",
        "timestamp": "2026-11-21T02:00:00Z",
        "jsonPayload": {
            "event": "ramped",
            "task": task,
            "attempted": established + refused,
            "established": established,
            "failed": failed,
            "connect_latency": latency,
            "ramp_elapsed_s": 0.5 + task,
            "connections_per_s": 10.0,
        },
    }


def test_flood_job_is_created_run_and_cancelled(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    # Logging has two tasks' lines at first, then all four (and a released line)
    early = [_ramped(0, 5, 0, 0.02), _ramped(1, 5, 0, 0.03)]
    late = [
        *early,
        _ramped(2, 3, 2, 0.05),
        _ramped(3, 0, 5, 0.01),
        {
            "insertId": "released-0",
            "timestamp": "2026-11-21T02:00:01Z",
            "jsonPayload": {"event": "released", "task": 0, "released": 5},
        },
    ]
    google.on("POST", "/v2/entries:list", (200, {"entries": early}), (200, {"entries": late}))
    image = "us-docker.pkg.dev/p/chaos/flood-job:1"
    started = start_cloud_run_flood(
        20,
        image,
        "staging-database-url",
        "staging-vpc-connector",
        FLOOD_ACCOUNT,
        connections_per_task=6,
        hold_s=120,
        **gcp,
    )
    assert started["execution"] == execution and started["tasks"] == 4
    assert (started["attempted"], started["established"]) == (20, 13)
    assert started["failed"] == {"too_many_connections": 7}
    assert started["failed_share"] == 0.35
    assert started["connect_latency"]["p95_s"] == 0.05  # the worst task's
    # one PATCH that creates the job as it would update it (allowMissing)
    (put,) = [r for r in google.requests if r.method == "PATCH"]
    assert put.path == JOB and put.query["allowMissing"] == ["true"]
    template = put.body["template"]
    assert (template["taskCount"], template["parallelism"]) == (4, 4)
    container = template["template"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOOD_CONNECTIONS"]["value"] == "20"  # shared by the tasks
    assert env["FLOOD_DSN"]["valueSource"] == {
        "secretKeyRef": {"secret": "staging-database-url", "version": "latest"}
    }
    assert template["template"]["vpcAccess"]["connector"] == CONNECTOR[4:]
    # the tasks run as the profile's account (it may read the secret), not Compute's
    assert template["template"]["serviceAccount"] == FLOOD_ACCOUNT
    logs = [r for r in google.requests if r.path == "/v2/entries:list"]
    assert len(logs) == 2
    query = logs[0].body["filter"]
    assert 'labels."run.googleapis.com/execution_name" = "chaos-flood-abc"' in query
    assert re.search(r' AND timestamp >= "[^"]+"$', query)  # every read is bounded in time

    assert env["FLOOD_CONCURRENCY"]["value"] == "16"  # 64 in flight, shared by 4 tasks

    assert stop_cloud_run_flood() == {"job": "chaos-flood", "running": True, "cancelled": execution}
    # cancelling is asynchronous: the stop waited for the execution to end
    cancelled = [("POST", f"/v2/{execution}:cancel"), ("GET", f"/v2/{execution}")]
    assert google.calls()[-3:] == [*cancelled, ("GET", f"/v2/{execution}")]
    assert stop_cloud_run_flood() == {"job": "chaos-flood", "running": False}


def test_a_flood_whose_tasks_never_report_is_cancelled(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    google.on("POST", "/v2/entries:list", (200, {}))
    with pytest.raises(ActivityFailed, match=r"did not report their ramp within 2s \(0 of 1 did\)"):
        start_cloud_run_flood(
            5,
            "image",
            "secret",
            "staging-vpc-connector",
            FLOOD_ACCOUNT,
            connect_timeout_s=0.5,
            **{
                **gcp,
                "configuration": {
                    **gcp["configuration"],
                    "gcp_log_poll_s": 0.1,
                    "gcp_flood_task_start_s": 1.0,
                },
            },
        )
    assert ("POST", f"/v2/{execution}:cancel") in google.calls()[-3:]


@pytest.mark.parametrize("status", [400, 409, 412])
def test_stopping_a_flood_whose_execution_already_ended_is_no_error(
    google: FakeGoogle, gcp: dict, status: int
) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    google.on("POST", "/v2/entries:list", (200, {"entries": [_ramped(0, 5, 0, 0.02)]}))
    start_cloud_run_flood(5, "image", "secret", "staging-vpc-connector", FLOOD_ACCOUNT, **gcp)
    # its hold ran out: Google documents no status for cancelling it, and the execution
    # says it ended
    google.routes.clear()
    google.on(
        "POST",
        f"/v2/{execution}:cancel",
        error(status, "ANY", f"Execution {execution} has already finished."),
    )
    google.on("GET", f"/v2/{execution}", (200, {"completionTime": "2026-11-21T02:05:00Z"}))
    stopped = stop_cloud_run_flood()
    assert stopped == {
        "job": "chaos-flood",
        "running": True,
        "cancelled": None,
        "finished": execution,
    }
    assert stop_cloud_run_flood() == {"job": "chaos-flood", "running": False}


def test_a_refused_cancel_of_a_running_execution_is_an_error(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    _flood_job_routes(google, execution)
    google.on("POST", "/v2/entries:list", (200, {"entries": [_ramped(0, 5, 0, 0.02)]}))
    start_cloud_run_flood(5, "image", "secret", "staging-vpc-connector", FLOOD_ACCOUNT, **gcp)
    google.routes.clear()
    google.on("POST", f"/v2/{execution}:cancel", error(400, "FAILED_PRECONDITION", "no"))
    google.on("GET", f"/v2/{execution}", (200, {"name": execution}))  # still running
    with pytest.raises(ActivityFailed, match=r"^cancelling .*: HTTP 400 \(no\)$"):
        stop_cloud_run_flood()


def test_the_flood_job_keeps_the_labels_an_operator_set(google: FakeGoogle, gcp: dict) -> None:
    execution = f"{JOB[4:]}/executions/chaos-flood-abc"
    existing = {
        "name": JOB[4:],
        "labels": {"team": "sre", "cost-centre": "42"},
        "annotations": {"owner": "sre@example.com"},
        "template": {"template": {"containers": [{"image": "old"}]}},
    }
    _flood_job_routes(google, execution, job=existing)
    google.on("POST", "/v2/entries:list", (200, {"entries": [_ramped(0, 5, 0, 0.02)]}))
    start_cloud_run_flood(5, "image", "secret", "staging-vpc-connector", FLOOD_ACCOUNT, **gcp)
    (put,) = [r for r in google.requests if r.method == "PATCH"]
    # jobs.patch replaces the whole job: what the kit does not set goes with it
    assert put.body["labels"] == existing["labels"]
    assert put.body["annotations"] == existing["annotations"]
    assert put.body["template"]["template"]["containers"][0]["image"] == "image"
    stop_cloud_run_flood()


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
            image="image",
            dsn_secret="secret",
            connector="staging-vpc-connector",
            service_account=FLOOD_ACCOUNT,
            **arguments,
            **gcp,
        )
    assert google.requests == []


# --- probes ---------------------------------------------------------------------------------------


CONNECTOR_LABELS = {
    "connector_name": "staging-vpc-connector",
    "location": REGION,
    "project_id": PROJECT,
}
DATABASE_LABELS = {
    "database_id": f"{PROJECT}:netra-staging-db",
    "region": REGION,
    "project_id": PROJECT,
}


def test_connector_metrics_and_cloud_sql_backends_from_monitoring(
    google: FakeGoogle, gcp: dict
) -> None:
    monitoring = CloudMonitoring(google, PROJECT)
    # one hot instance of two: its CPU must count, not the mean's 62 %
    monitoring.read(CONNECTOR_CPU, lambda: [(CONNECTOR_LABELS, {}, [0.3, 0.95])])
    monitoring.read(CONNECTOR_INSTANCES, lambda: [(CONNECTOR_LABELS, {}, 2)])
    databases = [({"database": "netra"}, 120), ({"database": "postgres"}, 25)]
    monitoring.read(SQL_BACKENDS, lambda: [(DATABASE_LABELS, *d) for d in databases])
    try:
        # nothing shows until a minute was sampled and Monitoring's lag has passed
        assert eventually(lambda: connector_metrics("staging-vpc-connector", **gcp)["instances"])
        metrics = connector_metrics("staging-vpc-connector", **gcp)
        assert metrics["instances"] == 2 and metrics["utilisation"] >= 0.9
        assert eventually(lambda: cloud_sql_backends("netra-staging-db", 162, **gcp)["backends"])
        assert cloud_sql_backends("netra-staging-db", 162, **gcp) == {
            "instance": "netra-staging-db",
            "backends": 145,
            "max_connections": 162,
            "utilisation": round(145 / 162, 4),
        }
    finally:
        monitoring.close()
    reads = [r.query for r in google.requests if r.api == "monitoring"]
    assert reads[-4]["filter"] == [
        'metric.type = "vpcaccess.googleapis.com/connector/cpu/utilizations" AND '
        'resource.labels.connector_name = "staging-vpc-connector" AND '
        'resource.labels.location = "us-central1"'
    ]
    assert reads[-4]["aggregation.perSeriesAligner"] == ["ALIGN_PERCENTILE_99"]
    for query in reads:  # aligned to Monitoring's sampling, over its lag
        assert query["aggregation.alignmentPeriod"] == [f"{scaled(60):g}s"]
        start = datetime.fromisoformat(query["interval.startTime"][0])
        end = datetime.fromisoformat(query["interval.endTime"][0])
        assert end - start == timedelta(seconds=scaled(180 + 2 * 60))


def test_a_connector_in_a_shared_vpc_host_project_is_read_there(
    google: FakeGoogle, gcp: dict
) -> None:
    host = "projects/network-host/locations/us-east1/connectors/shared-connector"
    monitoring = CloudMonitoring(google, "network-host")
    labels = {
        "connector_name": "shared-connector",
        "location": "us-east1",
        "project_id": "network-host",
    }
    monitoring.read(CONNECTOR_CPU, lambda: [(labels, {}, [0.5, 0.5])])
    monitoring.read(CONNECTOR_INSTANCES, lambda: [(labels, {}, 3)])
    try:
        assert eventually(lambda: connector_metrics(host, **gcp)["instances"] == 3)
    finally:
        monitoring.close()
    assert {r.path for r in google.requests} == {"/v3/projects/network-host/timeSeries"}


def test_a_run_reads_the_load_sampled_since_it_started(google: FakeGoogle, gcp: dict) -> None:
    """For minutes after a run Monitoring still shows its pressure: the next run must not
    take it for its own."""
    monitoring = CloudMonitoring(google, PROJECT, sampling=False)  # the test samples
    backends = [150]
    monitoring.read(SQL_BACKENDS, lambda: [(DATABASE_LABELS, {}, backends[0])])

    def read(arguments: dict) -> int | None:  # over a minute: the old point stays in it
        return cloud_sql_backends("netra-staging-db", 162, minutes=1, **arguments)["backends"]

    monitoring.sample()  # the last run's flood
    assert eventually(lambda: read(gcp) == 150)
    backends[0] = 20  # it ended, and a run starts
    run = {**gcp, "configuration": {**gcp["configuration"], "run_started_at": time.time()}}
    assert read(run) is None  # the newest point Monitoring shows is not this run's
    monitoring.sample(datetime.now(UTC) + timedelta(seconds=scaled(60)))  # a period later
    assert eventually(lambda: read(run) == 20)


def _cpu(monitoring: CloudMonitoring, values: Callable[[list[dict]], float]) -> list[dict]:
    """Cloud SQL's CPU, `values(what the condition said so far)` at each sample; that."""
    seen: list[dict] = []
    monitoring.read(SQL_CPU, lambda: [(DATABASE_LABELS, {}, values(seen))])
    return seen


def _cpu_statuses_until_breached(gcp: dict, seen: list[dict]) -> list[dict]:
    arguments = {"threshold_pct": 80.0, "window_s": scaled(300), "instance": "netra-staging-db"}

    def breached() -> bool:
        seen.append(database_cpu_sustained(**arguments, **gcp))
        return seen[-1]["status"] == "breached"

    # the window, a minute of sampling and the lag are 0.8 s here: a state, not a duration
    assert eventually(breached, timeout_s=60), seen[-3:]
    return seen


def test_the_cpu_stop_condition_breaches_under_monitorings_lag(
    google: FakeGoogle, gcp: dict
) -> None:
    """95 % on every point, each visible 30 to 165 s after it was sampled."""
    monitoring = CloudMonitoring(google, PROJECT, lag_share=(30 / 165, 1.0))
    seen = _cpu(monitoring, lambda seen: 0.95)
    try:
        _cpu_statuses_until_breached(gcp, seen)
    finally:
        monitoring.close()
    assert {s["status"] for s in seen[:-1]} <= {"unobserved"}  # never "within"
    assert (seen[-1]["value"], seen[-1]["points"]) == (95.0, 5)
    (request, *_) = [r for r in google.requests if r.api == "monitoring"]
    assert request.query["filter"] == [
        'metric.type = "cloudsql.googleapis.com/database/cpu/utilization" AND '
        f'resource.labels.database_id = "{PROJECT}:netra-staging-db"'
    ]


def test_a_dip_in_the_window_keeps_the_cpu_stop_condition_within(
    google: FakeGoogle, gcp: dict
) -> None:
    monitoring = CloudMonitoring(google, PROJECT)
    # one point at 79 %, until the condition has judged a window holding it
    seen = _cpu(
        monitoring, lambda seen: 0.95 if any(s["status"] == "within" for s in seen) else 0.79
    )
    try:
        _cpu_statuses_until_breached(gcp, seen)
    finally:
        monitoring.close()
    # while the dip was in the window it held the condition within; then it moved out
    assert any(s["status"] == "within" and s["value"] == 79.0 for s in seen)


# --- a team's own signals: an SLO's burn rate, an alert policy's open alerts ---------------

RUN_LABELS = {
    "service_name": "backend",
    "revision_name": "backend-v1",
    "location": REGION,
    "project_id": PROJECT,
}


def _slo(monitoring: CloudMonitoring, failed: list[float]) -> str:
    """A 99 % availability SLO of backend's requests, `failed[0]` of them failing at each
    sample; its name."""
    monitoring.read(
        REQUESTS,
        lambda: [
            (RUN_LABELS, {"response_code_class": "2xx"}, round(1000 * (1 - failed[0]))),
            (RUN_LABELS, {"response_code_class": "5xx"}, round(1000 * failed[0])),
        ],
    )
    return monitoring.add_slo("backend", "availability", 0.99, "backend")


def _until(status: str, sample: Callable[[], dict], seen: list[dict]) -> dict:
    """Sample until the condition says `status` (a state, not a duration): its sample."""

    def reached() -> bool:
        seen.append(sample())
        return seen[-1]["status"] == status

    assert eventually(reached, timeout_s=60), seen[-3:]
    return seen[-1]


def test_an_slo_burn_rate_condition_judges_the_burn_monitoring_shows(
    google: FakeGoogle, gcp: dict
) -> None:
    """5 % of requests failing burns a 99 % SLO's budget 5 times too fast: within a
    threshold of 10; at 20 % it is breached, once Monitoring shows enough of it."""
    monitoring = CloudMonitoring(google, PROJECT)
    failed = [0.05]
    slo = _slo(monitoring, failed)
    lookback_s = scaled(300)  # 5 sampling periods

    def sample() -> dict:
        return slo_burn_rate(slo, threshold=10, lookback_s=lookback_s, **gcp)

    seen: list[dict] = []
    try:
        within = _until("within", sample, seen)
        assert {s["status"] for s in seen[:-1]} <= {"unobserved"}
        assert (within["value"], within["threshold"], within["goal"]) == (5.0, 10, 0.99)
        failed[0], flipped = 0.2, datetime.now(UTC)
        breached = _until("breached", sample, seen)
    finally:
        monitoring.close()
    assert breached["value"] > 10
    # judged on what was sampled after the flip, and shown no sooner than Monitoring's lag
    assert datetime.fromisoformat(breached["newest_end"]) > flipped
    shown_at = datetime.fromisoformat(google.requests[-1].query["interval.endTime"][0])
    assert shown_at - flipped >= timedelta(seconds=scaled(180))
    # chaosgcp's query: the SLO read, then its burn rate selected by the name Google gave
    get, listed = [r for r in google.requests if r.api == "monitoring"][-2:]
    assert (get.method, get.path) == (
        "GET",
        f"/v3/projects/{PROJECT}/services/backend/serviceLevelObjectives/availability",
    )
    assert (listed.method, listed.path) == ("GET", f"/v3/projects/{PROJECT}/timeSeries")
    assert listed.query["filter"] == [
        f'select_slo_burn_rate("projects/{monitoring.number}/services/backend/'
        f'serviceLevelObjectives/availability", "{lookback_s:g}s")'
    ]
    assert set(listed.query) == {"filter", "interval.startTime", "interval.endTime", "alt"}
    start = datetime.fromisoformat(listed.query["interval.startTime"][0])
    assert shown_at - start == timedelta(seconds=scaled(180 + 2 * 60))


def _hot_database_policy(monitoring: CloudMonitoring, cpu: list[float]) -> str:
    """Cloud SQL's CPU at `cpu[0]` each sample, and a policy alerting above 90 % held for
    two minutes; its name."""
    monitoring.read(SQL_CPU, lambda: [(DATABASE_LABELS, {}, cpu[0])])
    return monitoring.add_alert_policy(
        AlertPolicy(
            "7001",
            "Cloud SQL CPU above 90 %",
            SQL_CPU,
            {"database_id": f"{PROJECT}:netra-staging-db"},
            0.9,
            duration_s=120,
        )
    )


def test_an_alert_policy_condition_breaches_while_an_alert_is_open(
    google: FakeGoogle, gcp: dict
) -> None:
    monitoring = CloudMonitoring(google, PROJECT)
    cpu = [0.5]
    policy = _hot_database_policy(monitoring, cpu)
    seen: list[dict] = []
    try:
        calm = alert_policy_open(policy, **gcp)
        assert (calm["status"], calm["value"], calm["alerts"]) == ("within", 0, [])
        cpu[0], flipped = 0.95, datetime.now(UTC)
        breached = _until("breached", lambda: alert_policy_open(policy, **gcp), seen)
        # one open alert is not above a threshold of one
        assert alert_policy_open(policy, threshold=1, **gcp)["status"] == "within"
        cpu[0] = 0.5  # it cools down: Monitoring closes the alert
        _until("within", lambda: alert_policy_open(policy, **gcp), seen)
    finally:
        monitoring.close()
    assert breached["value"] == 1 and breached["display_name"] == "Cloud SQL CPU above 90 %"
    (alert,) = breached["alerts"]
    # opened on points sampled after the flip, shown after Monitoring's lag
    opened = datetime.fromisoformat(alert["open_time"].replace("Z", "+00:00"))
    assert opened - flipped >= timedelta(seconds=scaled(165))
    get, listed = [r for r in google.requests if r.api == "monitoring"][-2:]
    assert (get.method, get.path) == ("GET", f"/v3/projects/{PROJECT}/alertPolicies/7001")
    assert (listed.method, listed.path) == ("GET", f"/v3/projects/{PROJECT}/alerts")
    assert listed.query["filter"] == [
        f'state = "OPEN" AND policy.name = "projects/{monitoring.number}/alertPolicies/7001"'
    ]
    assert listed.query["pageSize"] == ["100"]


def test_every_page_of_open_alerts_is_counted(
    google: FakeGoogle, gcp: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitoring = CloudMonitoring(google, PROJECT)
    replicas = [
        {**DATABASE_LABELS, "database_id": f"{PROJECT}:netra-staging-db-{n}"} for n in range(3)
    ]
    monitoring.read(SQL_CPU, lambda: [(labels, {}, 0.95) for labels in replicas])
    policy = monitoring.add_alert_policy(
        AlertPolicy("7002", "Any Cloud SQL CPU above 90 %", SQL_CPU, {}, 0.9, duration_s=60)
    )
    monkeypatch.setattr("chaoskit.targets.gcp.monitoring._ALERT_PAGE_SIZE", 2)
    try:
        assert eventually(lambda: alert_policy_open(policy, **gcp)["value"] == 3, timeout_s=60)
    finally:
        monitoring.close()
    pages = [r.query for r in google.requests if r.path.endswith("/alerts")][-2:]
    assert "pageToken" not in pages[0] and pages[1]["pageToken"]


def test_the_fake_refuses_an_alert_filter_on_a_field_alerts_do_not_have(
    google: FakeGoogle, gcp: dict
) -> None:
    CloudMonitoring(google, PROJECT, sampling=False)
    alerts = gcp_client("monitoring", "v3", gcp["configuration"], gcp["secrets"])
    for wrong in ('state = "OPEN" AND policy.id = "7001"', 'state = "FIRING"'):
        request = alerts.projects().alerts().list(parent=f"projects/{PROJECT}", filter=wrong)
        with pytest.raises(GoogleApiError) as refused:
            call(request, "listing alerts")
        assert refused.value.status == 400


def _staging(gcp: dict, **stop_conditions: object) -> dict:
    """A staging run's configuration, its built-in conditions off, with `stop_conditions`."""
    configuration = {
        **gcp["configuration"],
        "target": "staging",
        "stop_conditions": {
            "error_rate_pct": None,
            "latency_pct_of_baseline": None,
            "pool_pct": None,
            "cpu_pct": None,
        },
    }
    settle_stop_conditions(configuration)
    configuration["stop_conditions"] = {**configuration["stop_conditions"], **stop_conditions}
    return configuration


def test_a_burning_slo_interrupts_the_run_with_its_sample_in_the_journal(
    google: FakeGoogle, gcp: dict
) -> None:
    monitoring = CloudMonitoring(google, PROJECT)
    slo = _slo(monitoring, [0.5])  # 50 times the budget
    cpu = [0.95]
    policy = _hot_database_policy(monitoring, cpu)
    conditions = {
        "slo_burn_rates": [
            {"name": "checkout-slo", "slo": slo, "threshold": 10, "lookback_s": scaled(300)}
        ],
        "alert_policies": [{"name": "database-hot", "policy": policy, "threshold": 5}],
    }
    configuration = _staging(gcp, every_s=0.1, **conditions)
    failures: list[tuple[str, BaseException]] = []
    interrupted = threading.Event()
    stops = arm_stop_conditions(
        {},
        configuration,
        {"gcp": gcp["secrets"]},
        None,
        on_failure=lambda part, e: failures.append((part, e)),
        on_breach=interrupted.set,
    )
    try:
        stops.start({}, configuration, {"gcp": gcp["secrets"]})
        assert interrupted.wait(timeout=60)
    finally:
        stops.disarm()
        monitoring.close()
    assert failures == []
    journal = stops.journal()
    assert journal["armed"]["checkout-slo"] == {
        "kind": "slo_burn_rate",
        "slo": slo,
        "threshold": 10,
        "lookback_s": scaled(300),
        "every_s": 0.1,
        "goal": 0.99,
        "display_name": "Checkout availability",
    }
    assert journal["armed"]["database-hot"]["display_name"] == "Cloud SQL CPU above 90 %"
    breach = journal["stopped_by"]
    assert (breach["condition"], breach["probe"]) == ("checkout-slo", "checkout-slo")
    assert breach["sample"]["status"] == "breached" and breach["sample"]["value"] > 10


def _an_slo_and_a_disabled_policy(google: FakeGoogle) -> tuple[CloudMonitoring, str, str]:
    """Monitoring (the test samples) with an SLO and a disabled alert policy; their names."""
    monitoring = CloudMonitoring(google, PROJECT, sampling=False)
    off = monitoring.add_alert_policy(
        AlertPolicy("7003", "Off", SQL_CPU, {}, 0.9, 60, enabled=False)
    )
    return monitoring, _slo(monitoring, [0.0]), off


def test_a_condition_that_cannot_be_armed_stops_the_run_and_the_testbed_does_not_arm_them(
    google: FakeGoogle, gcp: dict
) -> None:
    _, slo, off = _an_slo_and_a_disabled_policy(google)

    def arm(configuration: dict) -> StopConditions:
        return arm_stop_conditions(
            {},
            configuration,
            {"gcp": gcp["secrets"]},
            None,
            on_failure=lambda *_: None,
            on_breach=lambda: None,
        )

    missing = {
        "slo_burn_rates": [
            {"name": "gone", "threshold": 1, "slo": slo.replace("availability", "latency")}
        ]
    }
    with pytest.raises(
        KitError,
        match=r"^stop condition gone cannot be armed: reading SLO "
        r"projects/netra-staging/.*/latency: not found",
    ):
        arm(_staging(gcp, **missing))
    disabled = {"alert_policies": [{"name": "off", "policy": off}]}
    with pytest.raises(
        KitError,
        match=f"^stop condition off cannot be armed: alert policy "
        f"{off} is disabled, so it opens no alerts",
    ):
        arm(_staging(gcp, **disabled))
    asked = len(google.requests)
    on_the_testbed = {**_staging(gcp, **missing, **disabled), "target": "embedded"}
    stops = arm(on_the_testbed)
    assert stops.armed == [] and stops.not_armed == {
        "gone": "Cloud Monitoring watches staging: not on the embedded testbed",
        "off": "Cloud Monitoring watches staging: not on the embedded testbed",
    }
    assert len(google.requests) == asked  # nothing read


SINCE = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def _revision_line(instance: str, revision: str = "backend-chaos-1", **payload: object) -> dict:
    resource = {
        "type": "cloud_run_revision",
        "labels": {"service_name": "backend", "revision_name": revision, "location": REGION},
    }
    return {"resource": resource, "labels": {"instanceId": instance}, "jsonPayload": payload}


def _startup_lines(instance: str) -> list[dict]:
    phases = [
        {
            "event": "phase",
            "phase": n,
            "name": name,
            "status": status,
            "elapsed_s": elapsed,
            "started_at": f"2026-11-21T02:00:0{n}+00:00",
            "cause": cause,
        }
        for n, name, status, elapsed, cause in [
            (1, "init", "succeeded", 0.1, None),
            (2, "dependencies", "succeeded", 0.1, None),
            (3, "database", "timeout", 75.0, "connect_timeout"),
            (4, "cache", "blocked", 0.0, None),
            (5, "services", "blocked", 0.0, None),
            (6, "websocket", "blocked", 0.0, None),
            (7, "finalize", "blocked", 0.0, None),
        ]
    ]
    lines = [_revision_line(instance, **p) for p in phases]
    lines.append(_revision_line(instance, event="lifespan", startup_failed=True))
    exit_line = _revision_line(instance)
    del exit_line["jsonPayload"]
    return [*lines, {**exit_line, "textPayload": "Container called exit(3)."}]


def test_startup_from_cloud_logging_has_the_local_shape(google: FakeGoogle, gcp: dict) -> None:
    logging = CloudLogging(google, PROJECT, page_size=2)
    # an instance of the revision before, logging before the rollout began: out of bounds
    logging.write(
        _revision_line("old", "backend-v1", event="phase", phase=1, status="succeeded"),
        at=SINCE - timedelta(minutes=1),
    )
    for entry in _startup_lines("new"):
        logging.write(entry, at=SINCE + timedelta(seconds=len(logging.entries)))
    # and the revision before again, still serving, after it: not this revision
    logging.write(_revision_line("old", "backend-v1", event="request"))
    report = observe_cloud_run_startup(
        "backend", since=SINCE.isoformat(), revision="backend-chaos-1", **gcp
    )
    assert report["instance"] == "new" and report["exit_code"] == 3
    assert report["startup_failed"] is True and report["ready"] is False
    assert [p["status"] for p in report["phases"]] == ["succeeded"] * 2 + ["timeout"] + [
        "blocked"
    ] * 4
    assert report["failed_phase"]["cause"] == "connect_timeout"
    assert report["failure_at"] == "2026-11-21T02:01:18+00:00"
    requests = [r for r in google.requests if r.path == "/v2/entries:list"]
    # an empty first page, then five pages of two: every token was followed
    assert len(requests) == 1 + 5
    (query,) = logging.filters
    assert query == (
        'resource.type = "cloud_run_revision" AND resource.labels.service_name = "backend" '
        f'AND resource.labels.location = "{REGION}" AND resource.labels.revision_name = '
        f'"backend-chaos-1" AND timestamp >= "{SINCE.isoformat()}"'
    )
    assert {r.body["orderBy"] for r in requests} == {"timestamp desc"}


def test_a_long_log_since_the_rollout_keeps_the_newest_lines(google: FakeGoogle, gcp: dict) -> None:
    """More lines than one page: the exit line, the newest, must not be cut off."""
    logging = CloudLogging(google, PROJECT, page_size=1000)
    for index in range(1500):
        logging.write(_revision_line("new", event="request", n=index), at=SINCE)
    for entry in _startup_lines("new"):
        logging.write(entry, at=SINCE + timedelta(seconds=1))
    report = observe_cloud_run_startup("backend", since=SINCE.isoformat(), **gcp)
    assert report["exit_code"] == 3 and len(report["phases"]) == 7


def test_a_wait_for_a_startup_reads_on_from_the_newest_line_seen(
    google: FakeGoogle, gcp: dict
) -> None:
    """Each read starts at the newest line seen (less Logging's delay), not at the
    rollout again; a line listed late is still counted once."""
    logging = CloudLogging(google, PROJECT, page_size=50)
    lines = _startup_lines("new")
    for index, entry in enumerate(lines[:3]):
        logging.write(entry, at=SINCE + timedelta(seconds=index))

    def more(request: Request) -> None:  # the rest of the startup, after the first read
        if len(logging.filters) == 1 and len(logging.entries) == 3:
            for index, entry in enumerate(lines[3:], start=3):
                logging.write(entry, at=SINCE + timedelta(seconds=index))

    google.rules.append(lambda request, api: more(request) or [])
    report = wait_for_cloud_run_startup(
        "backend", SINCE.isoformat(), timeout_s=scaled(180), revision="backend-chaos-1", **gcp
    )
    assert report["exit_code"] == 3 and len(report["phases"]) == 7
    bounds = [re.search(r'timestamp >= "([^"]+)"$', f)[1] for f in logging.filters]
    assert bounds[0] == SINCE.isoformat()
    delay = timedelta(seconds=scaled(GOOGLE_SECONDS["log_delay_s"]))
    assert datetime.fromisoformat(bounds[-1]) == SINCE + timedelta(seconds=2) - delay


def test_a_startup_still_under_way_is_not_ready(google: FakeGoogle, gcp: dict) -> None:
    logging = CloudLogging(google, PROJECT)
    for n in (1, 2):
        logging.write(_revision_line("new", event="phase", phase=n, status="succeeded"))
    report = observe_cloud_run_startup("backend", **gcp)
    assert report["ready"] is False and report["exit_code"] is None


def test_cloud_run_status_says_the_newest_revision_did_not_become_ready(
    google: FakeGoogle, gcp: dict
) -> None:
    failed = "Revision 'backend-00002' is not ready and cannot serve traffic."
    google.on(
        "GET",
        SERVICE,
        (
            200,
            {
                "name": SERVICE[4:],
                "latestReadyRevision": "backend-00001",
                "latestCreatedRevision": f"{SERVICE[4:]}/revisions/backend-00002",
            },
        ),
    )
    google.on(
        "GET",
        f"{SERVICE}/revisions/backend-00002",
        (
            200,
            {
                "conditions": [
                    {"type": "Active", "state": "CONDITION_SUCCEEDED"},
                    {"type": "Ready", "state": "CONDITION_FAILED", "message": failed},
                ]
            },
        ),
    )
    monitoring = CloudMonitoring(google, PROJECT)
    revision = {"service_name": "backend", "revision_name": "backend-00001", "location": REGION}
    monitoring.read(
        RUN_INSTANCES,
        lambda: [(revision, {"state": "active"}, 2), (revision, {"state": "idle"}, 1)],
    )
    try:
        assert eventually(lambda: cloud_run_status("backend", **gcp)["instances"] is not None)
        status = cloud_run_status("backend", **gcp)
    finally:
        monitoring.close()
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


# --- can the kit hold a game day on staging? ----------------------------------------------------

FLOOD_IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/chaos/flood-job:latest"
STAGING = {
    "gcp_cloud_run_service": "backend",
    "gcp_vpc_connector": "staging-vpc-connector",
    "gcp_cloud_sql_instance": "netra-staging-db",
    "gcp_flood_image": FLOOD_IMAGE,
    "gcp_flood_dsn_secret": "chaos-flood-database-url",
    "gcp_flood_service_account": FLOOD_ACCOUNT,
}


@pytest.fixture
def staging_project(google: FakeGoogle, backend: CloudRunService, gcp: dict) -> dict:
    """Every resource the staging profile names exists; the activities' arguments."""
    google.on("GET", CONNECTOR, (200, connector()))
    google.on("GET", SQL, (200, {"name": "netra-staging-db", "state": "RUNNABLE"}))
    google.on(
        "GET",
        f"/v1/projects/{PROJECT}/secrets/chaos-flood-database-url",
        (200, {"name": "projects/1234/secrets/chaos-flood-database-url"}),
    )
    tag = f"/v1/{RUN_LOCATION}/repositories/chaos/packages/flood-job/tags/latest"
    google.on("GET", tag, (200, {"name": tag[4:], "version": "sha256:abc"}))
    return {**gcp, "configuration": {**gcp["configuration"], **STAGING}}


REPOSITORY = f"{RUN_LOCATION}/repositories/chaos"
SECRET = f"projects/{PROJECT}/secrets/chaos-flood-database-url"


def _asked(google: FakeGoogle) -> dict[str, set[str]]:
    """Which permissions were asked of which resource."""
    asked: dict[str, set[str]] = {}
    for request in google.requests:
        if request.path.endswith(":testIamPermissions"):
            resource = request.path.split("/", 2)[2].removesuffix(":testIamPermissions")
            asked.setdefault(resource, set()).update(request.body["permissions"])
    return asked


def test_staging_access_is_checked_for_every_permission_and_resource(
    google: FakeGoogle, staging_project: dict
) -> None:
    assert staging_access_problems(**staging_project) == []
    # each permission where it can be granted least: the service, the image's
    # repository, the secret (the flood's job does not exist yet), else the project
    assert _asked(google) == {
        SERVICE[4:]: {"run.services.get", "run.services.update", "run.revisions.get"},
        REPOSITORY: {"artifactregistry.tags.get"},
        SECRET: {"secretmanager.secrets.get"},
        f"projects/{PROJECT}": {
            p.name for p in permissions_for(None) if p.on in ("project", "job", "connector")
        },
        f"projects/-/serviceAccounts/{FLOOD_ACCOUNT}": {"iam.serviceAccounts.actAs"},
    }
    assert set().union(*_asked(google).values()) >= {p.name for p in permissions_for(None)}
    read = {r.path for r in google.requests if r.method == "GET"}
    tag = f"/v1/{REPOSITORY}/packages/flood-job/tags/latest"
    assert {SERVICE, CONNECTOR, SQL, f"/v1/{SECRET}", tag} <= read


def test_roles_granted_on_the_resources_alone_are_enough(
    google: FakeGoogle, staging_project: dict
) -> None:
    """Least privilege, as Google's docs suggest: roles on the service, the job, the
    repository and the secret, none of them in the project."""
    on_resources = {
        SERVICE[4:]: ("run.services.get", "run.services.update", "run.revisions.get"),
        JOB[4:]: (
            "run.jobs.get",
            "run.jobs.update",
            "run.jobs.run",
            "run.executions.get",
            "run.executions.cancel",
        ),
        REPOSITORY: ("artifactregistry.tags.get",),
        SECRET: ("secretmanager.secrets.get",),
    }
    for resource, permissions in on_resources.items():
        google.deny(*permissions)
        google.grant(resource, *permissions)
    google.on("GET", JOB, (200, {"name": JOB[4:], "template": {}}))  # the job exists
    assert staging_access_problems(**staging_project) == []
    assert _asked(google)[JOB[4:]] == set(on_resources[JOB[4:]])
    force_cold_start("backend", **staging_project)  # and the calls go through


def test_the_permissions_asked_are_the_experiments_own(
    google: FakeGoogle, staging_project: dict
) -> None:
    experiment = {
        "method": [
            {
                "provider": {
                    "module": "chaoskit.actions.gcp.vpc_connector",
                    "func": "set_vpc_connector_scaling",
                }
            },
            {"provider": {"module": "chaoskit.actions.gcp.cloud_sql", "func": "restart_cloud_sql"}},
            {
                "provider": {
                    "module": "chaoskit.actions.gcp.cloud_sql",
                    "func": "set_cloud_sql_max_connections",
                }
            },
        ]
    }
    google.deny("vpcaccess.connectors.update", "cloudsql.instances.restart")
    assert staging_access_problems(**staging_project, experiment=experiment) == [
        f"the kit's account lacks cloudsql.instances.restart in project {PROJECT}: grant "
        "roles/cloudsql.editor (needed for restarting Cloud SQL)",
        # the connector's own project, here the same
        f"the kit's account lacks vpcaccess.connectors.update in project {PROJECT}: grant "
        "roles/vpcaccess.admin (needed for changing the connector)",
    ]
    asked = set().union(*_asked(google).values())
    assert "cloudsql.instances.update" in asked
    assert not {p for p in asked if p.startswith("run.")}  # no cold start, no flood


def test_each_missing_role_or_resource_is_one_line(
    google: FakeGoogle, staging_project: dict
) -> None:
    google.deny("run.services.update", "logging.logEntries.list", "iam.serviceAccounts.actAs")
    google.routes = [r for r in google.routes if "netra-staging-db" not in r[1].pattern]
    assert staging_access_problems(**staging_project) == [
        f"the kit's account lacks logging.logEntries.list in project {PROJECT}: grant "
        "roles/logging.viewer (needed for reading startups)",
        f"the kit's account lacks run.services.update on service {SERVICE[4:]}: grant "
        f"roles/run.developer on it, or in project {PROJECT} (needed for rolling out cold "
        "starts)",
        "Cloud SQL instance netra-staging-db (gcp.cloud_sql_instance) does not exist: check "
        "the profile",
        f"the kit's account cannot act as {FLOOD_ACCOUNT} (gcp.flood_service_account): grant "
        "it roles/iam.serviceAccountUser on that account",
    ]
    assert not [
        r
        for r in google.requests
        if r.method in ("PATCH", "POST") and not r.path.endswith(":testIamPermissions")
    ]


def test_the_slos_and_alert_policies_the_stop_conditions_watch_are_checked_before_the_run(
    google: FakeGoogle, staging_project: dict
) -> None:
    monitoring, slo, off = _an_slo_and_a_disabled_policy(google)
    on = monitoring.add_alert_policy(AlertPolicy("7004", "On", SQL_CPU, {}, 0.9, 60))
    watched = {
        "slo_burn_rates": [
            {"name": "checkout-slo", "slo": slo, "threshold": 10},
            {"name": "latency-slo", "threshold": 10, "slo": slo.replace("availability", "latency")},
        ],
        "alert_policies": [
            {"name": "database-off", "policy": off},
            {"name": "database-on", "policy": on},
        ],
    }
    google.deny("monitoring.alerts.list")
    assert staging_access_problems(**staging_project, stop_conditions=watched) == [
        f"the kit's account lacks monitoring.alerts.list in project {PROJECT}: grant "
        "roles/monitoring.alertViewer (needed for the alert-policy stop conditions)",
        f"SLO {slo.replace('availability', 'latency')} (stop condition latency-slo) does not "
        "exist: check the profile",
        f"alert policy projects/{monitoring.number}/alertPolicies/7003 is disabled, so it "
        "opens no alerts: enable it, or remove the stop condition",
    ]
    assert {
        "monitoring.slos.get",
        "monitoring.alertPolicies.get",
        "monitoring.alerts.list",
        "monitoring.timeSeries.list",
    } <= _asked(google)[f"projects/{PROJECT}"]
    # without those conditions, none of it is asked or read
    asked = len(google.requests)
    staging_access_problems(**staging_project)
    assert not [r for r in google.requests[asked:] if r.api == "monitoring"]


def test_a_permission_denied_by_google_is_one_line_naming_the_role_list(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    google.deny("run.services.update")
    with pytest.raises(ActivityFailed) as failure:
        force_cold_start("backend", **gcp)
    assert str(failure.value) == (
        f"updating Cloud Run service {SERVICE[4:]}: permission denied: grant the role "
        "docs/staging.md lists for this call (Permission 'run.services.update' denied on "
        "resource)"
    )


def test_the_fake_checks_requests_against_googles_published_specification() -> None:
    run, service = spec("run"), f"/v2/{RUN_LOCATION}/services/backend"
    patch = "run.projects.locations.services.patch"
    template = {"template": {"revision": "backend-x"}}
    assert run.violations("PATCH", service, {"updateMask": ["template.revision"]}, template) == []
    assert run.violations("PATCH", service, {"updateMask": ["template.revison"]}, template) == [
        f"{patch}: updateMask path 'template.revison' names no field"
    ]
    # output-only fields in a mask or a body are ignored, as AIP-203 says
    assert (
        run.violations(
            "PATCH",
            service,
            {"updateMask": ["latestReadyRevision"]},
            {**template, "latestReadyRevision": "x", "uid": 3},
        )
        == []
    )
    assert run.violations("PATCH", service, {"forceNewRevisions": ["true"]}, template) == [
        f"{patch}: unknown query parameter 'forceNewRevisions'"
    ]
    body = {"template": {"containers": [{"image": 3}, {"name": "no-image"}], "vpcAcess": {}}}
    assert run.violations("PATCH", service, {}, body) == [
        "GoogleCloudRunV2Service.template.containers[0].image: expected a string, got 3",
        "GoogleCloudRunV2Service.template.containers[1].image is required",
        "GoogleCloudRunV2Service.template: unknown field 'vpcAcess'",
    ]
    assert run.violations("PATCH", service, {}, {}) == [
        "GoogleCloudRunV2Service.template is required"
    ]
    job = {"template": {"template": {"containers": [{"image": "i"}], "timeout": "300"}}}
    assert run.violations("PATCH", f"/v2/{RUN_LOCATION}/jobs/chaos-flood", {}, job) == [
        "GoogleCloudRunV2Job.template.template.timeout: '300' is not a google-duration"
    ]
    series = f"/v3/projects/{PROJECT}/timeSeries"
    assert spec("monitoring").violations(
        "GET", series, {"interval.endTime": ["yesterday"]}, None
    ) == [
        "monitoring.projects.timeSeries.list: interval.endTime: 'yesterday' is not a "
        "google-datetime"
    ]
    assert spec("logging").violations("POST", "/v2/entries:list", {}, {"filters": "x"}) == [
        "ListLogEntriesRequest.resourceNames is required",
        "ListLogEntriesRequest: unknown field 'filters'",
    ]
    assert run.violations("POST", "/v2/entries:list", {}, {}) == [
        "run: no method answers POST /v2/entries:list"
    ]


@pytest.mark.parametrize(
    ("api", "path", "query", "body", "refusal"),
    [
        (
            "monitoring",
            f"/v3/projects/{PROJECT}/timeSeries",
            {
                "interval.endTime": ["2026-11-21T02:00:00Z"],
                "aggregation.alignmentPeriod": ["30s"],
                "aggregation.perSeriesAligner": ["ALIGN_MEAN"],
            },
            None,
            "aggregation.alignmentPeriod 30s is below 60 seconds",
        ),
        (
            "monitoring",
            f"/v3/projects/{PROJECT}/timeSeries",
            {
                "interval.endTime": ["2026-11-21T02:00:00Z"],
                "aggregation.perSeriesAligner": ["ALIGN_MAX"],
            },
            None,
            "aggregation.alignmentPeriod is required with ALIGN_MAX",
        ),
        (
            "monitoring",
            f"/v3/projects/{PROJECT}/timeSeries",
            {},
            None,
            "interval.endTime is required",
        ),
        (
            "logging",
            "/v2/entries:list",
            {},
            {"resourceNames": [f"projects/{PROJECT}"], "pageSize": 5000},
            "exceeds 1000",
        ),
        (
            "logging",
            "/v2/entries:list",
            {},
            {"resourceNames": [f"projects/{PROJECT}"], "filter": 'jsonPayload.event = "ramped'},
            "filter: unexpected",
        ),
        (
            "logging",
            "/v2/entries:list",
            {},
            {"resourceNames": [f"projects/{PROJECT}"], "filter": "(severity >= ERROR"},
            "the filter ends too soon",
        ),
        (
            "cloudresourcemanager",
            f"/v1/projects/{PROJECT}:testIamPermissions",
            {},
            {"permissions": ["run.*"]},
            "wildcards",
        ),
        (
            "cloudresourcemanager",
            f"/v1/projects/{PROJECT}:testIamPermissions",
            {},
            {"permissions": ["run.services.deploy"]},
            "Permission 'run.services.deploy' is not valid.",
        ),
        (
            "run",
            f"/v2/{RUN_LOCATION}/services/backend:testIamPermissions",
            {},
            {"permissions": ["secretmanager.secrets.get"]},
            "is not valid for this resource",
        ),
    ],
)
def test_the_fake_refuses_what_google_documents_it_refuses(
    api: str, path: str, query: dict, body: object, refusal: str
) -> None:
    google = FakeGoogle(GoogleClock(time_scale=1.0))
    try:
        method = "GET" if body is None else "POST"
        status, answer = google._answer_for(Request(api, method, path, query, body, None))
    finally:
        google.close()
    assert status == 400 and refusal in answer["error"]["message"]


def test_reads_are_retried_on_429_and_503_changes_only_when_google_did_not_act(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    google.refuse_next(429, "run", times=2)
    google.refuse_next(503, "run")
    assert get_service(backend.name, **gcp)["name"] == backend.name  # a read: retried
    google.refuse_next(503, "run", method="PATCH")  # answered before acting: retried
    assert force_cold_start("backend", **gcp)["latest_created_revision"]
    google.refuse_next(500, "run", method="PATCH")  # a 500 on a change may have acted
    patches = len(_patches(google))
    with pytest.raises(ActivityFailed, match=r"HTTP 500"):
        force_cold_start("backend", **gcp)
    assert len(_patches(google)) == patches + 1
    assert [status for status, _ in google.refused] == [429, 429, 503, 503, 500]


def test_a_quota_spent_for_longer_than_the_retries_is_one_line(
    google: FakeGoogle, backend: CloudRunService, gcp: dict
) -> None:
    google.limits.reads_per_minute["run"] = 0  # no read left this minute, or the next
    with pytest.raises(GoogleApiError) as failure:
        get_service(backend.name, **gcp)
    assert str(failure.value).startswith(
        f"reading Cloud Run service {backend.name}: quota exhausted, still after retries"
    )


def test_credentials_given_as_an_experiments_secrets_reach_every_call(
    google: FakeGoogle, backend: CloudRunService, gcp: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chaosgcp's `secrets.gcp` as an experiment declares it, handed whole (as the
    kit's control has it) or scoped (as an activity declaring `secrets: [gcp]` has it)."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    whole = {"gcp": gcp["secrets"]}
    assert get_service(backend.name, gcp["configuration"], whole)["name"] == backend.name
    assert get_service(backend.name, gcp["configuration"], gcp["secrets"])["name"]


def test_a_service_that_logs_text_is_read_by_its_own_patterns_on_staging(
    google: FakeGoogle, gcp: dict
) -> None:
    """The example service's text lines, as Cloud Run sends them to Logging."""
    example = REPO / "experiments" / "profiles" / "example-service.json"
    service = json.loads(example.read_text())["configuration"]["service"]
    logging = CloudLogging(google, PROJECT)
    lines = [
        "07:00:00,120 INFO inventory: step read-settings started",
        "07:00:00,121 INFO inventory: step read-settings done in 0.001s",
        "07:00:00,121 INFO inventory: step connect-database started",
        "07:00:00,140 WARNING inventory: step connect-database attempt 1 failed "
        "(too_many_connections): retrying in 0.20s",
        "07:01:15,122 ERROR inventory: step connect-database gave up after 75.001s "
        "(too_many_connections)",
        "07:01:15,123 CRITICAL inventory: startup aborted, exiting with code 1",
        "Container called exit(1).",
    ]
    for line in lines:
        entry = _revision_line("new")
        del entry["jsonPayload"]
        logging.write({**entry, "textPayload": line})
    configuration = {**gcp["configuration"], "service": service}
    report = observe_cloud_run_startup(
        "backend", configuration=configuration, secrets=gcp["secrets"]
    )
    assert report["exit_code"] == 1 and report["startup_failed"] is True
    assert [(p["name"], p["status"]) for p in report["phases"]] == [
        ("read-settings", "succeeded"),
        ("connect-database", "timeout"),
        ("load-catalogue", "blocked"),
        ("serve-http", "blocked"),
    ]
    assert report["failed_phase"]["cause"] == "too_many_connections"
    # the example's patterns read no timestamp: when the phase gave up is not known
    assert report["unreported"] == ["failure_at"]


# every query parameter the kit sends, by method: an older client library whose
# documents lack one fails with a TypeError before any request (services.patch's
# updateMask before 2.123)
KIT_SENDS = {
    "run.projects.locations.services.patch": {"updateMask"},
    "run.projects.locations.jobs.patch": {"allowMissing"},
    "monitoring.projects.timeSeries.list": {
        "filter",
        "interval.startTime",
        "interval.endTime",
        "aggregation.alignmentPeriod",
        "aggregation.perSeriesAligner",
        "view",
    },
    "run.projects.locations.services.testIamPermissions": {"resource"},
    "run.projects.locations.jobs.testIamPermissions": {"resource"},
    "run.projects.locations.jobs.executions.get": {"name"},
    "run.projects.locations.jobs.executions.cancel": {"name"},
    "artifactregistry.projects.locations.repositories.testIamPermissions": {"resource"},
    "secretmanager.projects.secrets.testIamPermissions": {"resource"},
    "cloudresourcemanager.projects.testIamPermissions": {"resource"},
    "iam.projects.serviceAccounts.testIamPermissions": {"resource"},
    "monitoring.services.serviceLevelObjectives.get": {"name"},
    "monitoring.projects.alertPolicies.get": {"name"},
    "monitoring.projects.alerts.list": {"parent", "filter", "pageSize", "pageToken"},
}


def test_the_gcp_extra_requires_a_client_whose_documents_carry_what_the_kit_sends() -> None:
    """Run with GOOGLE_SPEC_DOCUMENTS set to the floor's documents folder to check the
    floor itself (2.185's carry every one: the first with Monitoring's `alerts.list`)."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["gcp"]
    (floor,) = [r.split(">=")[1] for r in extra if r.startswith("google-api-python-client>=")]
    assert Version(importlib.metadata.version("google-api-python-client")) >= Version(floor)
    assert Version(floor) >= Version("2.185")
    methods = {m.id: m for api in VERSIONS for m in spec(api).methods}
    for method_id, parameters in KIT_SENDS.items():
        known = set(methods[method_id].spec.get("parameters", {}))
        assert parameters <= known, (method_id, parameters - known)
