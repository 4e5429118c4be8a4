"""The connection flood at staging scale: a Cloud Run Job with N parallel tasks, inside
the VPC and behind the Serverless VPC Access connector, as the service's own traffic is.

Cloud Run Jobs is the distributed engine: `start_cloud_run_flood` creates the job, or
updates it (`jobs.patch` with `allowMissing`, keeping the labels and annotations an
operator set), runs it, and waits until every task has reported its ramp in Cloud
Logging; `stop_cloud_run_flood` cancels the execution (its tasks get SIGTERM and
release their connections) and, cancelling being asynchronous, waits until it has
ended. The image is built from `deploy/flood-job/Dockerfile`; the database URL
comes from Secret Manager, never from the experiment; the tasks run as the service
account given (one that may read that secret), not as the Compute Engine default.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import Counter
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit import registry
from chaoskit.kit.errors import KitError, activity
from chaoskit.kit.failures import flood_applied, misconfigured
from chaoskit.kit.settings import RunSettings
from chaoskit.targets.gcp.api import (
    GoogleApiError,
    LogTail,
    call,
    gcp_client,
    log_poll_s,
    log_window_start,
    project_and_region,
    wait_for_operation,
)
from chaoskit.targets.gcp.resources import connector_name
from chaoskit.targets.workers.pressure import APPLICATION_PREFIX

__all__ = ["start_cloud_run_flood", "stop_cloud_run_flood"]

KIND = "gcp-flood-job"
MAX_TASKS = 100
_JOB_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")


class _RunningExecution:
    kind = KIND

    def __init__(self, name: str, execution: str, configuration: Any, secrets: Any) -> None:
        self.name, self.execution = name, execution
        self._configuration, self._secrets = configuration, secrets

    def stop(self) -> dict[str, Any]:
        executions = (
            gcp_client("run", "v2", self._configuration, self._secrets)
            .projects()
            .locations()
            .jobs()
            .executions()
        )
        what = f"cancelling {self.execution}"
        try:
            call(executions.cancel(name=self.execution, body={}), what)
        except GoogleApiError as refused:
            # Google documents no status for cancelling an execution that already ended
            # (its hold ran out): whatever the 4xx, the execution says whether it ended
            if not 400 <= refused.status < 500 or not self._completed(executions, what):
                raise
            return {"cancelled": None, "finished": self.execution}
        # cancelling is asynchronous: the tasks release their connections once it ends
        wait_for_operation(
            lambda: executions.get(name=self.execution),
            what,
            self._configuration,
            is_done=lambda execution: bool(execution.get("completionTime")),
        )
        return {"cancelled": self.execution}

    def _completed(self, executions: Any, what: str) -> bool:
        return bool(call(executions.get(name=self.execution), what).get("completionTime"))


def _job_body(
    image: str,
    tasks: int,
    flood: dict[str, Any],
    dsn_secret: str,
    connector: str,
    service_account: str,
    application_name: str,
    task_start_s: float,
) -> dict[str, Any]:
    env = [
        {"name": "FLOOD_CONNECTIONS", "value": str(flood["connections"])},
        {"name": "FLOOD_HOLD_S", "value": str(flood["hold_s"])},
        {"name": "FLOOD_RAMP_S", "value": str(flood["ramp_s"])},
        {"name": "FLOOD_CONNECT_TIMEOUT_S", "value": str(flood["connect_timeout_s"])},
        # the experiment's connects in flight, shared by the tasks (at least one each)
        {"name": "FLOOD_CONCURRENCY", "value": str(max(1, flood["concurrency"] // tasks))},
        {"name": "FLOOD_APPLICATION_NAME", "value": application_name},
        {
            "name": "FLOOD_DSN",
            "valueSource": {"secretKeyRef": {"secret": dsn_secret, "version": "latest"}},
        },
    ]
    return {
        "template": {
            "taskCount": tasks,
            "parallelism": tasks,
            "template": {
                "containers": [{"image": image, "env": env}],
                "maxRetries": 0,
                "serviceAccount": service_account,
                "timeout": f"{flood['ramp_s'] + flood['hold_s'] + task_start_s:.3f}s",
                "vpcAccess": {"connector": connector, "egress": "PRIVATE_RANGES_ONLY"},
            },
        }
    }


def _combine_ramps(ramps: list[dict[str, Any]], connections: int) -> dict[str, Any]:
    """One ramp report from the tasks' own: counts add up; each latency percentile and
    the ramp's duration are the worst task's (percentiles do not add)."""
    failed: Counter[str] = Counter()
    for ramp in ramps:
        failed.update(ramp.get("failed") or {})
    latencies = [r.get("connect_latency") or {} for r in ramps]
    worst = {
        key: max((lat[key] for lat in latencies if lat.get(key) is not None), default=None)
        for key in ("p50_s", "p95_s", "p99_s", "max_s")
    }
    established = sum(r.get("established", 0) for r in ramps)
    return {
        "attempted": sum(r.get("attempted", 0) for r in ramps),
        "established": established,
        "failed": dict(failed),
        "misconfigured": misconfigured(failed),
        "applied": flood_applied(established, failed),
        "failed_share": round(sum(failed.values()) / connections, 4),
        "connect_latency": worst,
        "ramp_elapsed_s": max((r.get("ramp_elapsed_s") or 0.0 for r in ramps), default=None),
        "connections_per_s": round(sum(r.get("connections_per_s") or 0.0 for r in ramps), 1),
    }


def _wait_for_ramps(
    job: str,
    execution: str,
    since: str,
    tasks: int,
    timeout_s: float,
    project: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[dict[str, Any]]:
    """The tasks' "ramped" lines from Cloud Logging, once all `tasks` have reported."""
    query = (
        'resource.type = "cloud_run_job" '
        f'AND resource.labels.job_name = "{job}" '
        f'AND labels."run.googleapis.com/execution_name" = "{execution}" '
        'AND jsonPayload.event = "ramped"'
    )
    tail = LogTail(
        project, query, since, f"reading the logs of Cloud Run Job {job}", configuration, secrets
    )
    poll_every_s = log_poll_s(configuration)
    deadline = time.monotonic() + timeout_s
    while True:
        by_task = {}
        for entry in tail.read():
            payload = entry.get("jsonPayload") or {}
            if payload.get("event") == "ramped":
                by_task[payload.get("task")] = payload
        if len(by_task) >= tasks:
            return list(by_task.values())
        if time.monotonic() >= deadline:
            raise KitError(
                f"the flood's tasks did not report their ramp within {timeout_s:g}s "
                f"({len(by_task)} of {tasks} did): the execution {execution} was cancelled; "
                "see its logs in Cloud Logging"
            )
        time.sleep(min(poll_every_s, max(0.0, deadline - time.monotonic())))


def _put_job(
    name: str, body: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None
) -> None:
    """Create the job, or replace its template keeping what an operator set on it
    (labels, annotations): `jobs.patch` replaces the whole job."""
    client = gcp_client("run", "v2", configuration, secrets)
    jobs = client.projects().locations().jobs()
    operations = client.projects().locations().operations()
    what = f"preparing Cloud Run Job {name}"
    try:
        current = call(jobs.get(name=name), what)
    except GoogleApiError as missing:
        if missing.status != 404:
            raise
        current = {}
    kept = {key: current[key] for key in ("labels", "annotations") if current.get(key)}
    operation = call(jobs.patch(name=name, allowMissing=True, body={**kept, **body}), what)
    wait_for_operation(lambda: operations.get(name=operation["name"]), what, configuration)


@activity
def start_cloud_run_flood(
    connections: int,
    image: str,
    dsn_secret: str,
    connector: str,
    service_account: str,
    connections_per_task: int | None = None,
    hold_s: float = 300.0,
    ramp_s: float = 0.0,
    connect_timeout_s: float = 35.0,
    concurrency: int = 64,
    job: str = "chaos-flood",
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Flood staging's database from inside the VPC: `connections` connections spread
    over parallel Cloud Run Job tasks, held for `hold_s` seconds.

    Arguments:
        connections: connections in all (the guardrails count them against
            max_database_connections).
        image: the flood image (deploy/flood-job/Dockerfile), in Artifact Registry.
        dsn_secret: the Secret Manager secret holding the database URL.
        connector: the Serverless VPC Access connector the tasks go through.
        service_account: the e-mail of the service account the tasks run as; it needs
            roles/secretmanager.secretAccessor on `dsn_secret`.
        connections_per_task: at most this many per task; tasks = connections / this,
            rounded up (at most 100 tasks); default: the configuration's
            `gcp.flood_connections_per_task` (25).
        hold_s: seconds the connections are held; then the tasks release them and end.
        ramp_s: seconds over which each task spreads its connects.
        connect_timeout_s: seconds one connect may take before it counts as failed.
        concurrency: connects in flight at once, shared by the tasks (at least one each).
        job: the Cloud Run Job's name, created if it does not exist.

    Waits until every task has logged its ramp (allowing `gcp.flood_task_start_s` of
    the configuration, default 120, for the tasks' containers to start), then returns
    the flood's outcome in the local flood's shape (`attempted`, `established`,
    `failed` by cause, the worst task's `connect_latency`, ...) with `job`,
    `execution`, `tasks` and the `application_name` the connections carry.
    """
    if not isinstance(connections, int) or connections < 1:
        raise KitError(f"connections={connections!r} must be a whole number >= 1")
    if connections_per_task is None:
        connections_per_task = RunSettings.of(configuration).gcp.flood_connections_per_task
    if not isinstance(connections_per_task, int) or connections_per_task < 1:
        raise KitError(f"connections_per_task={connections_per_task!r} must be >= 1")
    tasks = math.ceil(connections / connections_per_task)
    if tasks > MAX_TASKS:
        raise KitError(
            f"connections={connections} needs {tasks} tasks of {connections_per_task}: at "
            f"most {MAX_TASKS} tasks; raise connections_per_task"
        )
    if not _JOB_ID.match(job):
        raise KitError(
            f"job={job!r} is not a Cloud Run Job name: lowercase letters, digits and '-', "
            "starting with a letter, at most 63 characters"
        )
    if registry.lookup(KIND, job) is not None:
        raise KitError(f"the Cloud Run flood {job!r} is already running: stop it first")
    project, region = project_and_region(configuration, project, region)
    name = f"projects/{project}/locations/{region}/jobs/{job}"
    application_name = f"{APPLICATION_PREFIX}flood-{uuid.uuid4().hex[:12]}"
    flood = {
        "connections": connections,
        "hold_s": hold_s,
        "ramp_s": ramp_s,
        "connect_timeout_s": connect_timeout_s,
        "concurrency": concurrency,
    }
    task_start_s = RunSettings.of(configuration).gcp.flood_task_start_s
    body = _job_body(
        image,
        tasks,
        flood,
        dsn_secret,
        connector_name(connector, project, region),
        service_account,
        application_name,
        task_start_s,
    )
    _put_job(name, body, configuration, secrets)
    since = log_window_start(configuration)
    jobs = gcp_client("run", "v2", configuration, secrets).projects().locations().jobs()
    started = call(jobs.run(name=name, body={}), f"running Cloud Run Job {name}")
    execution = (started.get("metadata") or {}).get("name")
    if not execution:
        raise KitError(f"running Cloud Run Job {name}: no execution in the answer")
    running = _RunningExecution(job, execution, configuration, secrets)
    registry.register(running)
    try:
        ramps = _wait_for_ramps(
            job,
            execution.rsplit("/", 1)[-1],
            since,
            tasks,
            ramp_s + 2 * connect_timeout_s + task_start_s,
            project,
            configuration,
            secrets,
        )
    except KitError:
        stop_cloud_run_flood(job)
        raise
    return {
        "job": name,
        "execution": execution,
        "tasks": tasks,
        "hold_s": hold_s,
        "application_name": application_name,
        **_combine_ramps(ramps, connections),
    }


@activity
def stop_cloud_run_flood(job: str = "chaos-flood") -> dict[str, Any]:
    """Cancel the flood's execution (its tasks release their connections); idempotent,
    also once the execution has ended by itself. Returns `{"job", "running",
    "cancelled"}` (and `finished`, the execution that had already ended)."""
    running = registry.unregister(KIND, job)
    if running is None:
        return {"job": job, "running": False}
    return {"job": job, "running": True, **running.stop()}
