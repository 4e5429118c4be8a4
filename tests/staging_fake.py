"""Staging in miniature: Google's control plane faked, the workloads real.

The fake answers Cloud Run (services, jobs, executions, operations), Cloud Logging and
Cloud Monitoring over HTTP as Google would, and runs on this machine what Google would
run: a rollout starts a real instance of the reference service against the embedded
testbed (Cloud SQL behind its connector), a job execution runs the real flood-job worker
in one process per task, with FLOOD_DSN from a stand-in Secret Manager, and Logging
returns what they printed. Only the control plane is fake; the failure chain is real.
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
from pathlib import Path
from typing import Any

import asyncpg

from chaoskit.kit.processes import stop_popen
from chaoskit.testbed.instances import ServiceInstance, launch_service
from chaoskit.testbed.service.settings import ServiceSettings
from tests.gcp_fake import FakeGoogle, Request, error
from tests.google_cloud import CloudLogging, CloudRunService

REPO = Path(__file__).resolve().parents[1]
PROJECT, REGION, SERVICE = "netra-staging", "us-central1", "backend"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
CONNECTOR = f"{LOCATION}/connectors/staging-vpc-connector"
SQL_INSTANCE = "netra-staging-db"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/backend/api:latest"
FLOOD_ACCOUNT = f"chaos-flood@{PROJECT}.iam.gserviceaccount.com"


@dataclass
class RunningRevision:
    revision: str
    instance_id: str
    instance: ServiceInstance


@dataclass
class Execution:
    name: str
    job: str
    tasks: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)
    cancelled: bool = False


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
        self.google, self.deployed, self.secrets = google, deployed, secrets
        self.admin_dsn = admin_dsn
        self.work_dir, self.connector_cpu = work_dir, connector_cpu
        self.database_cpu = 0.35
        self.revisions: list[RunningRevision] = []
        self._admin: asyncpg.Connection | None = None
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, Execution] = {}
        self.service = CloudRunService(
            google, LOCATION, SERVICE, IMAGE, start=self._start_revision,
            vpc_access={"connector": CONNECTOR, "egress": "PRIVATE_RANGES_ONLY"},
            service_account=f"backend@{PROJECT}.iam.gserviceaccount.com",
        )  # fmt: skip
        self.logging = CloudLogging(google, PROJECT, page_size=20)
        self.logging.sources += [self._revision_entries, self._job_entries]
        v2 = f"/v2/{LOCATION}"
        google.on("GET", f"{v2}/operations/(.+)", lambda r, m: (200, {"done": True}))
        google.on("GET", f"{v2}/jobs/([a-z0-9-]+)", self._get_job)
        google.on("POST", f"{v2}/jobs", self._create_job)
        google.on("PATCH", f"{v2}/jobs/([a-z0-9-]+)", self._update_job)
        google.on("POST", f"{v2}/jobs/([a-z0-9-]+):run", self._run_job)
        google.on("POST", f"/v2/({LOCATION}/jobs/[a-z0-9-]+/executions/[^:]+):cancel", self._cancel)
        google.on("GET", f"/v3/projects/{PROJECT}/timeSeries", self._metrics)
        # what the preflight reads
        google.on("GET", f"/v1/{CONNECTOR}", (200, {"name": CONNECTOR, "state": "READY"}))
        google.on("GET", f"/v1/projects/{PROJECT}/instances/{SQL_INSTANCE}",
                  (200, {"name": SQL_INSTANCE, "state": "RUNNABLE"}))  # fmt: skip
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
                return {"done": True, "error": {"code": 9, "message": (
                    f"Revision '{revision}' is not ready and cannot serve traffic. The "
                    "user-provided container failed to start and listen on the port")}}  # fmt: skip
            ready = len(phases) == 7 and all(p["status"] == "succeeded" for p in phases)
            return {"done": ready}

        return state

    def _revision_entries(self) -> list[tuple[Hashable, dict[str, Any]]]:
        """What every revision's instance printed, then Cloud Run's line for its exit."""
        entries: list[tuple[Hashable, dict[str, Any]]] = []
        for running in self.revisions:
            resource = {"type": "cloud_run_revision", "labels": {
                "service_name": SERVICE, "revision_name": running.revision, "location": REGION,
                "project_id": PROJECT}}  # fmt: skip
            labels = {"instanceId": running.instance_id}
            instance = running.instance
            code = instance.process.poll()  # before reading: every line is in by then
            for line, record in enumerate(_read_json_lines(instance.log_path)):
                entry = {"resource": resource, "labels": labels, "jsonPayload": record}
                entries.append(((running.revision, line), entry))
            if code is not None:
                entry = {"resource": resource, "labels": labels,
                         "textPayload": f"Container called exit({code})."}  # fmt: skip
                entries.append(((running.revision, "exit"), entry))
        return entries

    # --- Cloud Run Jobs ----------------------------------------------------------------

    def _get_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        job = self.jobs.get(match.group(1))
        if job is None:
            return error(404, "NOT_FOUND", f"Job {match.group(1)} not found")
        return 200, job

    def _create_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        (job,) = request.query["jobId"]
        self.jobs[job] = {"name": f"{LOCATION}/jobs/{job}", **request.body}
        return 200, {"name": f"{LOCATION}/operations/create-{job}"}

    def _update_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        self.jobs[match.group(1)].update(request.body)
        return 200, {"name": f"{LOCATION}/operations/update-{match.group(1)}"}

    def _run_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        job = match.group(1)
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
        execution = Execution(f"{LOCATION}/jobs/{job}/executions/{name}", job)
        count = template["taskCount"]
        for index in range(count):
            output = self.work_dir / f"{name}-task{index}.log"
            task_env = {**os.environ, **env, "CLOUD_RUN_TASK_INDEX": str(index),
                        "CLOUD_RUN_TASK_COUNT": str(count)}  # fmt: skip
            with output.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "chaoskit.targets.workers.flood_task"],
                    cwd=REPO, env=task_env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            execution.tasks.append((process, output))
        self.executions[name] = execution
        return 200, {"name": f"{LOCATION}/operations/run-{name}",
                     "metadata": {"name": execution.name}}  # fmt: skip

    def _cancel(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        execution = self.executions[match.group(1).rsplit("/", 1)[-1]]
        if all(process.poll() is not None for process, _ in execution.tasks):
            return error(400, "FAILED_PRECONDITION",
                         f"Execution {execution.name} has already finished.")  # fmt: skip
        execution.cancelled = True
        for process, _ in execution.tasks:
            process.terminate()  # Cloud Run sends SIGTERM to each task
        for process, _ in execution.tasks:
            process.wait(timeout=30)
        return 200, {"name": f"{LOCATION}/operations/cancel"}

    def _job_entries(self) -> list[tuple[Hashable, dict[str, Any]]]:
        entries: list[tuple[Hashable, dict[str, Any]]] = []
        for name, execution in self.executions.items():
            resource = {"type": "cloud_run_job", "labels": {
                "job_name": execution.job, "location": REGION, "project_id": PROJECT}}  # fmt: skip
            for index, (_, output) in enumerate(execution.tasks):
                labels = {"run.googleapis.com/execution_name": name,
                          "run.googleapis.com/task_index": str(index)}  # fmt: skip
                entries += [((name, index, line),
                             {"resource": resource, "labels": labels, "jsonPayload": record})
                            for line, record in enumerate(_read_json_lines(output))]  # fmt: skip
        return entries

    # --- Monitoring --------------------------------------------------------------------

    def _metrics(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        """The connector's and Cloud SQL's CPU are set figures (nothing here measures
        them, and the stand-in database is far from 80 %); Cloud SQL's
        backends are the stand-in database's sessions, counted now."""
        (query,) = request.query["filter"]
        if "database/cpu/utilization" in query:
            assert f'resource.labels.database_id = "{PROJECT}:netra-staging-db"' in query
            points = [{"value": {"doubleValue": self.database_cpu}}] * 5  # a minute apart
            return 200, {"timeSeries": [{"points": points}]}
        if "num_backends" in query:
            assert f'resource.labels.database_id = "{PROJECT}:netra-staging-db"' in query
            value = {"int64Value": str(self._backends())}
        elif "instances" in query:
            assert 'resource.labels.connector_name = "staging-vpc-connector"' in query
            value = {"int64Value": "2"}
        else:
            assert 'resource.labels.connector_name = "staging-vpc-connector"' in query
            value = {"doubleValue": self.connector_cpu}
        return 200, {"timeSeries": [{"points": [{"value": value}]}]}

    def _backends(self) -> int:
        """Counted through one connection the fake keeps, one query at a time, as Cloud
        Monitoring is a single reader: requests come in on many threads, and PostgreSQL
        keeps only a few slots for superusers once a flood fills the rest."""
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
        if self._admin is not None:
            asyncio.run_coroutine_threadsafe(self._admin.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        for revision in self.revisions:
            revision.instance.stop()
        for process in self.task_processes():
            stop_popen(process)
