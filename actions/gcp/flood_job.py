"""The connection flood at staging scale: a Cloud Run Job with N parallel tasks, inside
the VPC and behind the Serverless VPC Access connector, as the service's own traffic is.

Cloud Run Jobs is the distributed engine: `start_cloud_run_flood` creates the job, or
updates it, runs it, and waits until its tasks have started; `stop_cloud_run_flood`
cancels the execution (its tasks get SIGTERM and release their connections). The image
is built from `deploy/flood-job/Dockerfile`; the database URL comes from Secret Manager,
never from the experiment.
"""

from __future__ import annotations

import uuid
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from actions.gcp.api import call, gcp_client, project_and_region, wait_for_operation
from actions.gcp.vpc_connector import connector_name
from actions.workers.pressure import APPLICATION_PREFIX
from testbed import registry

__all__ = ["start_cloud_run_flood", "stop_cloud_run_flood"]

KIND = "gcp-flood-job"
MAX_TASKS = 100


class _RunningExecution:
    kind = KIND

    def __init__(self, name: str, execution: str, configuration: Any, secrets: Any) -> None:
        self.name, self.execution = name, execution
        self._configuration, self._secrets = configuration, secrets

    def stop(self) -> dict[str, Any]:
        executions = (
            gcp_client("run", "v2", self._configuration, self._secrets)
            .projects().locations().jobs().executions()
        )  # fmt: skip
        call(executions.cancel(name=self.execution, body={}), f"cancelling {self.execution}")
        return {"cancelled": self.execution}


def _job_body(
    image: str,
    tasks: int,
    connections_per_task: int,
    hold_s: float,
    dsn_secret: str,
    connector: str,
    application_name: str,
) -> dict[str, Any]:
    env = [
        {"name": "FLOOD_CONNECTIONS", "value": str(connections_per_task)},
        {"name": "FLOOD_HOLD_S", "value": str(hold_s)},
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
                "timeout": f"{int(hold_s) + 120}s",
                "vpcAccess": {"connector": connector, "egress": "PRIVATE_RANGES_ONLY"},
            },
        }
    }  # fmt: skip


def start_cloud_run_flood(
    tasks: int,
    connections_per_task: int,
    image: str,
    dsn_secret: str,
    connector: str,
    hold_s: float = 300.0,
    job: str = "chaos-flood",
    project: str | None = None,
    region: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Flood staging's database from inside the VPC: `tasks` parallel Cloud Run Job
    tasks, each holding `connections_per_task` connections for `hold_s` seconds.

    Arguments:
        tasks: parallel tasks (at most 100).
        connections_per_task: connections each task opens.
        image: the flood image (deploy/flood-job/Dockerfile), in Artifact Registry.
        dsn_secret: the Secret Manager secret holding the database URL.
        connector: the Serverless VPC Access connector the tasks go through.
        hold_s: seconds the connections are held; then the tasks release them and end.
        job: the Cloud Run Job's name, created if it does not exist.

    The guardrails count `tasks x connections_per_task` against
    max_database_connections. Returns `{"job", "execution", "tasks",
    "connections", "application_name"}`.
    """
    if not isinstance(tasks, int) or not 0 < tasks <= MAX_TASKS:
        raise ActivityFailed(f"tasks={tasks!r} is out of range: give 1 to {MAX_TASKS}")
    if not isinstance(connections_per_task, int) or connections_per_task < 1:
        raise ActivityFailed(f"connections_per_task={connections_per_task!r} must be >= 1")
    if registry.lookup(KIND, job) is not None:
        raise ActivityFailed(f"the Cloud Run flood {job!r} is already running: stop it first")
    project, region = project_and_region(configuration, project, region)
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/jobs/{job}"
    application_name = f"{APPLICATION_PREFIX}flood-{uuid.uuid4().hex[:12]}"
    body = _job_body(
        image, tasks, connections_per_task, hold_s, dsn_secret,
        connector_name(connector, project, region), application_name,
    )  # fmt: skip
    client = gcp_client("run", "v2", configuration, secrets)
    jobs = client.projects().locations().jobs()
    operations = client.projects().locations().operations()
    what = f"preparing Cloud Run Job {name}"
    try:
        call(jobs.get(name=name), what)
        operation = call(jobs.patch(name=name, body=body), what)
    except ActivityFailed as missing:
        if "not found" not in str(missing):
            raise
        operation = call(jobs.create(parent=parent, jobId=job, body=body), what)
    wait_for_operation(lambda: operations.get(name=operation["name"]), what, configuration)
    started = call(jobs.run(name=name, body={}), f"running Cloud Run Job {name}")
    execution = (started.get("metadata") or {}).get("name")
    if not execution:
        raise ActivityFailed(f"running Cloud Run Job {name}: no execution in the answer")
    registry.register(_RunningExecution(job, execution, configuration, secrets))
    return {
        "job": name,
        "execution": execution,
        "tasks": tasks,
        "connections": tasks * connections_per_task,
        "application_name": application_name,
    }


def stop_cloud_run_flood(job: str = "chaos-flood") -> dict[str, Any]:
    """Cancel the flood's execution (its tasks release their connections); idempotent.
    Returns `{"job", "running", "cancelled"}`."""
    running = registry.unregister(KIND, job)
    if running is None:
        return {"job": job, "running": False}
    return {"job": job, "running": True, **running.stop()}
