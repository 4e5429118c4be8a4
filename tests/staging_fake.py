"""Staging in miniature: Google's control plane faked on Google's clock, the workloads
real.

The fake answers Cloud Run (services, jobs, executions, operations), Cloud Logging, Cloud
Monitoring and what the preflight reads over HTTP as Google would, on Google's clock
divided by one time scale (`tests.gcp_fake.GoogleClock`), within Google's limits, and
runs on this machine what Google would run: a rollout starts a real instance of the
reference service against the embedded testbed (Cloud SQL behind its connector) once
its container is due, a job execution runs the real flood-job worker in one process per
task once its tasks are due (killed at the task's timeout), with FLOOD_DSN from a
stand-in Secret Manager, and Logging returns what they printed, seconds late.
Monitoring samples Cloud SQL's backends from the stand-in database each minute of the
clock, and shows them as late as Google does; the backend's requests (set figures, as
its CPU) feed its availability SLO. Only the control plane is fake; the failure chain
is real.

`scaled_profile` divides every duration of the staging profile by the same time scale,
so that a rehearsal keeps every ratio of real staging.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from chaoskit.kit.processes import stop_popen
from chaoskit.testbed.instances import ServiceInstance, launch_service
from chaoskit.testbed.service.settings import ServiceSettings
from tests.gcp_fake import FakeGoogle, Request, error
from tests.google_cloud import (
    CloudLogging,
    CloudMonitoring,
    CloudRunService,
    Operations,
    VpcConnector,
)

REPO = Path(__file__).resolve().parents[1]
PROJECT, REGION, SERVICE = "netra-staging", "us-central1", "backend"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
CONNECTOR = f"{LOCATION}/connectors/staging-vpc-connector"
SQL_INSTANCE = "netra-staging-db"
SLO_NAME = f"projects/{PROJECT}/services/{SERVICE}/serviceLevelObjectives/availability"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/backend/api:latest"
FLOOD_ACCOUNT = f"chaos-flood@{PROJECT}.iam.gserviceaccount.com"


def scaled_profile(configuration: dict[str, Any], time_scale: float) -> dict[str, Any]:
    """The profile's configuration with every duration (a key ending in `_s`, nested
    ones too) divided by `time_scale`; counts and thresholds as they are."""

    def scale(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: scale(v, k) for k, v in value.items()}
        if isinstance(value, list):  # a list of conditions, say
            return [scale(v, "") for v in value]
        if key.endswith("_s") and isinstance(value, int | float) and not isinstance(value, bool):
            return value / time_scale
        return value

    return scale(configuration, "")


@dataclass
class RunningRevision:
    revision: str
    instance_id: str
    instance: ServiceInstance


@dataclass
class Execution:
    name: str
    job: str
    task_count: int
    tasks: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)
    started: bool = False
    cancelled: bool = False
    completed: str | None = None  # completionTime

    def ended(self) -> bool:
        if not self.started:  # cancelled before its tasks started, or not yet started
            return self.cancelled
        return all(process.poll() is not None for process, _ in self.tasks)


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


class FakeStaging:
    """The staging project: Cloud Run service `backend` and Cloud Run Jobs, Logging and
    Monitoring, and the resources the staging profile names."""

    def __init__(
        self,
        google: FakeGoogle,
        deployed: ServiceSettings,
        secrets: dict[str, str],
        work_dir: Path,
        admin_dsn: str,
        connector_cpu: float = 0.3,
    ) -> None:
        self.google, self.clock = google, google.clock
        self.deployed, self.secrets = deployed, secrets
        self.admin_dsn = admin_dsn
        self.work_dir, self.connector_cpu = work_dir, connector_cpu
        self.database_cpu = 0.35
        self.failed_requests = 0.0  # the share of the backend's requests answered 5xx
        self.revisions: list[RunningRevision] = []
        self._admin: asyncpg.Connection | None = None
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, Execution] = {}
        self._timers: list[threading.Timer] = []
        self.service = CloudRunService(
            google,
            LOCATION,
            SERVICE,
            IMAGE,
            start=self._start_revision,
            retire=self._retire_others,
            vpc_access={"connector": CONNECTOR, "egress": "PRIVATE_RANGES_ONLY"},
            service_account=f"backend@{PROJECT}.iam.gserviceaccount.com",
        )
        self.logging = CloudLogging(google, PROJECT, page_size=20)
        self.logging.sources += [self._revision_entries, self._job_entries]
        self.monitoring = CloudMonitoring(google, PROJECT)
        self._monitor()
        self.operations = Operations(google, "v2", LOCATION)
        v2 = f"/v2/{LOCATION}"
        google.on("GET", f"{v2}/jobs/([a-z0-9-]+)", self._get_job)
        google.on("PATCH", f"{v2}/jobs/([a-z0-9-]+)", self._put_job)
        google.on("POST", f"{v2}/jobs/([a-z0-9-]+):run", self._run_job)
        google.on("GET", f"{v2}/jobs/[a-z0-9-]+/executions/([^:/]+)", self._get_execution)
        google.on("POST", f"{v2}/jobs/[a-z0-9-]+/executions/([^:/]+):cancel", self._cancel)
        # what the preflight reads
        VpcConnector(google, CONNECTOR)
        google.on(
            "GET",
            f"/v1/projects/{PROJECT}/instances/{SQL_INSTANCE}",
            (200, {"name": SQL_INSTANCE, "state": "RUNNABLE"}),
        )
        for secret in secrets:
            name = f"projects/{PROJECT}/secrets/{secret}"
            google.on("GET", f"/v1/{name}", (200, {"name": name}))
        tag = f"{LOCATION}/repositories/chaos/packages/flood-job/tags/latest"
        google.on("GET", f"/v1/{tag}", (200, {"name": tag, "version": "sha256:0"}))

    # --- Cloud Run services: a rollout starts a real instance -----------------------------

    def _start_revision(self, revision: str) -> Callable[[], dict[str, Any]]:
        instance = launch_service(revision, self.deployed, self.work_dir / "revisions")
        running = RunningRevision(revision, uuid.uuid4().hex, instance)
        self.revisions.append(running)

        def state() -> dict[str, Any]:
            """Done once the revision's instance is ready, failed once it exited."""
            phases = [r for r in _read_json_lines(instance.log_path) if r.get("event") == "phase"]
            if instance.process.poll() is not None:
                return {
                    "done": True,
                    "error": {
                        "code": 9,
                        "message": (
                            f"Revision '{revision}' is not ready and cannot serve traffic. The "
                            "user-provided container failed to start and listen on the port"
                        ),
                    },
                }
            ready = len(phases) == 7 and all(p["status"] == "succeeded" for p in phases)
            return {"done": ready}

        return state

    def _retire_others(self, revision: str) -> None:
        """`revision` took the traffic: the instances of the others are stopped."""
        for running in self.revisions:
            if running.revision != revision and running.instance.process.poll() is None:
                running.instance.stop()

    def _revision_entries(self) -> list[tuple[Hashable, dict[str, Any]]]:
        """What every revision's instance printed, then Cloud Run's line for its exit."""
        entries: list[tuple[Hashable, dict[str, Any]]] = []
        for running in list(self.revisions):
            resource = {
                "type": "cloud_run_revision",
                "labels": {
                    "service_name": SERVICE,
                    "revision_name": running.revision,
                    "location": REGION,
                    "project_id": PROJECT,
                },
            }
            labels = {"instanceId": running.instance_id}
            instance = running.instance
            code = instance.process.poll()  # before reading: every line is in by then
            for line, record in enumerate(_read_json_lines(instance.log_path)):
                entry = {"resource": resource, "labels": labels, "jsonPayload": record}
                entries.append(((running.revision, line), entry))
            if code is not None:
                entry = {
                    "resource": resource,
                    "labels": labels,
                    "textPayload": f"Container called exit({code}).",
                }
                entries.append(((running.revision, "exit"), entry))
        return entries

    # --- Cloud Run Jobs ----------------------------------------------------------------

    def _get_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        job = self.jobs.get(match.group(1))
        if job is None:
            return error(404, "NOT_FOUND", f"Job {match.group(1)} not found")
        return 200, job

    def _put_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        """jobs.patch replaces the whole job; `allowMissing` creates it."""
        job = match.group(1)
        if job not in self.jobs and request.query.get("allowMissing") != ["true"]:
            return error(404, "NOT_FOUND", f"Job {job} not found")
        name = f"{LOCATION}/jobs/{job}"

        def put() -> dict[str, Any]:
            self.jobs[job] = {**request.body, "name": name}
            return {"response": self.jobs[job]}

        return 200, self.operations.start(put)

    def _run_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        job = match.group(1)
        if job not in self.jobs:
            return error(404, "NOT_FOUND", f"Job {job} not found")
        template = self.jobs[job]["template"]
        task = template["template"]
        (container,) = task["containers"]
        account = task.get("serviceAccount")
        env = {}
        for variable in container["env"]:
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            elif account != FLOOD_ACCOUNT:  # the Compute Engine default may not read it
                secret = variable["valueSource"]["secretKeyRef"]["secret"]
                who = account or "the Compute Engine default service account"
                return error(403, "PERMISSION_DENIED", f"Permission denied on {secret} for {who}")
            else:
                secret = variable["valueSource"]["secretKeyRef"]["secret"]
                env[variable["name"]] = self.secrets[secret]
        name = f"{job}-{len(self.executions) + 1}"
        count = template["taskCount"]
        execution = Execution(f"{LOCATION}/jobs/{job}/executions/{name}", job, count)
        self.executions[name] = execution
        timeout_s = _seconds(task.get("timeout", "600s"))

        def start_tasks() -> None:
            if execution.cancelled:
                return
            for index in range(count):
                output = self.work_dir / f"{name}-task{index}.log"
                task_env = {
                    **os.environ,
                    **env,
                    "CLOUD_RUN_TASK_INDEX": str(index),
                    "CLOUD_RUN_TASK_COUNT": str(count),
                }
                with output.open("w") as out:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "chaoskit.targets.flood.cloud_run_task"],
                        cwd=REPO,
                        env=task_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                execution.tasks.append((process, output))
            execution.started = True
            self._later(timeout_s, lambda: self._terminate(execution))  # the task's timeout

        self._later(self.clock.seconds(self.clock.task_start_s), start_tasks)
        # the operation of a run ends with its execution
        return 200, {
            "name": f"{LOCATION}/operations/run-{name}",
            "done": False,
            "metadata": {"name": execution.name},
        }

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _terminate(self, execution: Execution) -> None:
        for process, _ in execution.tasks:
            if process.poll() is None:
                process.terminate()  # Cloud Run sends SIGTERM to each task

    def _get_execution(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        execution = self.executions.get(match.group(1))
        if execution is None:
            return error(404, "NOT_FOUND", f"Execution {match.group(1)} not found")
        answer: dict[str, Any] = {"name": execution.name, "taskCount": execution.task_count}
        if execution.completed is None and execution.ended():
            execution.completed = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if execution.completed:
            answer["completionTime"] = execution.completed
        if execution.cancelled:
            answer["cancelledCount"] = execution.task_count
        return 200, answer

    def _cancel(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        execution = self.executions[match.group(1)]
        if execution.ended() or execution.cancelled:
            # Google documents no status for this: any refusal will do, and Cloud Run's
            # own wording changes
            return error(400, "INVALID_ARGUMENT", f"Execution {execution.name} is not running.")
        execution.cancelled = True
        # asynchronous: the tasks get SIGTERM a little later
        self._later(self.clock.seconds(self.clock.cancel_s), lambda: self._terminate(execution))
        return 200, {"name": f"{LOCATION}/operations/cancel-{match.group(1)}", "done": False}

    def _job_entries(self) -> list[tuple[Hashable, dict[str, Any]]]:
        entries: list[tuple[Hashable, dict[str, Any]]] = []
        for name, execution in list(self.executions.items()):
            resource = {
                "type": "cloud_run_job",
                "labels": {"job_name": execution.job, "location": REGION, "project_id": PROJECT},
            }
            for index, (_, output) in enumerate(list(execution.tasks)):
                labels = {
                    "run.googleapis.com/execution_name": name,
                    "run.googleapis.com/task_index": str(index),
                }
                entries += [
                    (
                        (name, index, line),
                        {"resource": resource, "labels": labels, "jsonPayload": record},
                    )
                    for line, record in enumerate(_read_json_lines(output))
                ]
        return entries

    # --- Monitoring --------------------------------------------------------------------

    def _monitor(self) -> None:
        """The connector's and Cloud SQL's CPU and the backend's requests (600 a minute,
        `failed_requests` of them 5xx) are set figures (nothing here measures them, and
        the stand-in database is far from 80 %); Cloud SQL's backends are the stand-in
        database's sessions, counted at each sample. The backend has a 99 % availability
        SLO (SLO_NAME)."""
        connector = {
            "connector_name": "staging-vpc-connector",
            "location": REGION,
            "project_id": PROJECT,
        }
        database = {
            "database_id": f"{PROJECT}:{SQL_INSTANCE}",
            "region": REGION,
            "project_id": PROJECT,
        }
        revision = {"service_name": SERVICE, "location": REGION, "project_id": PROJECT}
        read = self.monitoring.read
        read(
            "vpcaccess.googleapis.com/connector/cpu/utilizations",
            lambda: [(connector, {}, [self.connector_cpu] * 2)],
        )
        read("vpcaccess.googleapis.com/connector/instances", lambda: [(connector, {}, 2)])
        read(
            "cloudsql.googleapis.com/database/cpu/utilization",
            lambda: [(database, {}, self.database_cpu)],
        )
        read(
            "cloudsql.googleapis.com/database/postgresql/num_backends",
            lambda: [(database, {"database": "netra"}, self._backends())],
        )
        read(
            "run.googleapis.com/container/instance_count",
            lambda: [
                (
                    revision,
                    {"state": "active"},
                    sum(r.instance.process.poll() is None for r in self.revisions),
                )
            ],
        )
        read(
            "run.googleapis.com/request_count",
            lambda: [
                (revision, {"response_code_class": code}, round(600 * share))
                for code, share in (
                    ("2xx", 1 - self.failed_requests),
                    ("5xx", self.failed_requests),
                )
            ],
        )
        self.monitoring.add_slo(SERVICE, "availability", 0.99, SERVICE)

    def _backends(self) -> int:
        """Counted through one connection the fake keeps, one query at a time, as Cloud
        Monitoring is a single reader: PostgreSQL keeps only a few slots for superusers
        once a flood fills the rest."""
        return asyncio.run_coroutine_threadsafe(self._count(), self._loop).result(timeout=10)

    async def _count(self) -> int:
        if self._admin is None:
            self._admin = await asyncpg.connect(self.admin_dsn)
        return await self._admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )

    # --- the test's view ---------------------------------------------------------------

    def task_processes(self) -> list[subprocess.Popen]:
        return [p for e in self.executions.values() for p, _ in e.tasks]

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for part in (self.service, self.logging, self.monitoring):
            part.close()
        if self._admin is not None:
            asyncio.run_coroutine_threadsafe(self._admin.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        for revision in self.revisions:
            revision.instance.stop()
        for process in self.task_processes():
            stop_popen(process)
