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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from chaoskit.kit.processes import stop_popen
from chaoskit.testbed.instances import ServiceInstance, launch_service
from chaoskit.testbed.service.settings import ServiceSettings
from tests.gcp_fake import FakeGoogle, Request

REPO = Path(__file__).resolve().parents[1]
PROJECT, REGION, SERVICE = "netra-staging", "us-central1", "backend"
LOCATION = f"projects/{PROJECT}/locations/{REGION}"
CONNECTOR = f"{LOCATION}/connectors/staging-vpc-connector"


@dataclass
class RunningRevision:
    instance_id: str
    started_at: datetime
    instance: ServiceInstance


@dataclass
class Execution:
    name: str
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


def _filter_value(query: str, pattern: str) -> str:
    match = re.search(pattern, query)
    assert match, f"the log filter lacks {pattern!r}: {query}"
    return match.group(1)


class FakeStaging:
    """Cloud Run service `backend`, Cloud Run Jobs, Logging and Monitoring."""

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
        self.revisions: list[RunningRevision] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, Execution] = {}
        self.service = {
            "name": f"{LOCATION}/services/{SERVICE}",
            "template": {
                "containers": [{"image": "us-docker.pkg.dev/netra-staging/backend:1"}],
                "vpcAccess": {"connector": CONNECTOR, "egress": "PRIVATE_RANGES_ONLY"},
            },
            "latestReadyRevision": f"{SERVICE}-00001",
        }
        v2 = f"/v2/{LOCATION}"
        google.on("GET", f"{v2}/services/{SERVICE}", lambda r, m: (200, self.service))
        google.on("PATCH", f"{v2}/services/{SERVICE}", self._roll_out)
        google.on("GET", f"{v2}/operations/rollout-([0-9]+)", self._rollout_operation)
        google.on("GET", f"{v2}/operations/(.+)", lambda r, m: (200, {"done": True}))
        google.on("GET", f"{v2}/jobs/([a-z0-9-]+)", self._get_job)
        google.on("POST", f"{v2}/jobs", self._create_job)
        google.on("PATCH", f"{v2}/jobs/([a-z0-9-]+)", self._update_job)
        google.on("POST", f"{v2}/jobs/([a-z0-9-]+):run", self._run_job)
        google.on("POST", f"/v2/({LOCATION}/jobs/[a-z0-9-]+/executions/[^:]+):cancel", self._cancel)
        google.on("POST", "/v2/entries:list", self._logs)
        google.on("GET", f"/v3/projects/{PROJECT}/timeSeries", self._metrics)

    # --- Cloud Run services ------------------------------------------------------------

    def _roll_out(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        assert request.body["template"]["labels"]["chaos-kit-cold-start"]
        assert request.body["template"]["vpcAccess"] == self.service["template"]["vpcAccess"]
        number = len(self.revisions) + 2
        started_at = datetime.now(UTC)
        instance = launch_service(
            f"{SERVICE}-{number:05d}", self.deployed, self.work_dir / "revisions"
        )
        self.revisions.append(RunningRevision(uuid.uuid4().hex, started_at, instance))
        self.service = {**request.body, "latestCreatedRevision": f"{SERVICE}-{number:05d}"}
        return 200, {"name": f"{LOCATION}/operations/rollout-{number}"}

    def _rollout_operation(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        """Done once the revision's instance is ready, failed once it exited."""
        number = int(match.group(1))
        revision = self.revisions[number - 2]
        operation = {"name": f"{LOCATION}/operations/rollout-{number}", "done": False}
        phases = [r for r in _read_json_lines(revision.instance.log_path)
                  if r.get("event") == "phase"]  # fmt: skip
        if revision.instance.process.poll() is not None:
            operation.update(done=True, error={"code": 9, "message": (
                f"Revision '{SERVICE}-{number:05d}' is not ready and cannot serve traffic. "
                "The user-provided container failed to start and listen on the port")})  # fmt: skip
        elif len(phases) == 7 and all(p["status"] == "succeeded" for p in phases):
            operation["done"] = True
        return 200, operation

    def _revision_entries(self, query: str) -> list[dict[str, Any]]:
        assert f'resource.labels.service_name = "{SERVICE}"' in query
        since = datetime.fromisoformat(_filter_value(query, r'timestamp >= "([^"]+)"'))
        entries = []
        for revision in self.revisions:
            if revision.started_at < since:
                continue
            labels = {"instanceId": revision.instance_id}
            for record in _read_json_lines(revision.instance.log_path):
                entries.append({"labels": labels, "jsonPayload": record})
            code = revision.instance.process.poll()
            if code is not None:  # Cloud Run's own line, for any exit
                entries.append({"labels": labels, "textPayload": f"Container called exit({code})."})
        return entries

    # --- Cloud Run Jobs ----------------------------------------------------------------

    def _get_job(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        job = self.jobs.get(match.group(1))
        if job is None:
            return 404, {"error": {"code": 404, "message": f"Job {match.group(1)} not found"}}
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
        (container,) = template["template"]["containers"]
        env = {}
        for variable in container["env"]:
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                secret = variable["valueSource"]["secretKeyRef"]["secret"]
                env[variable["name"]] = self.secrets[secret]
        name = f"{job}-{len(self.executions) + 1}"
        execution = Execution(f"{LOCATION}/jobs/{job}/executions/{name}")
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
        execution.cancelled = True
        for process, _ in execution.tasks:
            process.terminate()  # Cloud Run sends SIGTERM to each task
        for process, _ in execution.tasks:
            process.wait(timeout=30)
        return 200, {"name": f"{LOCATION}/operations/cancel"}

    def _job_entries(self, query: str) -> list[dict[str, Any]]:
        job = _filter_value(query, r'resource.labels.job_name = "([^"]+)"')
        name = _filter_value(query, r'labels."run.googleapis.com/execution_name" = "([^"]+)"')
        assert name.startswith(f"{job}-")
        entries = []
        for index, (_, output) in enumerate(self.executions[name].tasks):
            labels = {"run.googleapis.com/execution_name": name,
                      "run.googleapis.com/task_index": str(index)}  # fmt: skip
            entries += [{"labels": labels, "jsonPayload": r} for r in _read_json_lines(output)]
        return entries

    # --- Logging and Monitoring --------------------------------------------------------

    def _logs(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        assert request.body["resourceNames"] == [f"projects/{PROJECT}"]
        query = request.body["filter"]
        if 'resource.type = "cloud_run_revision"' in query:
            return 200, {"entries": self._revision_entries(query)}
        if 'resource.type = "cloud_run_job"' in query:
            return 200, {"entries": self._job_entries(query)}
        return 400, {"error": {"code": 400, "message": f"unexpected filter {query}"}}

    def _metrics(self, request: Request, match: re.Match[str]) -> tuple[int, Any]:
        """The connector's CPU is a set figure (nothing here measures it); Cloud SQL's
        backends are the stand-in database's sessions, counted now."""
        (query,) = request.query["filter"]
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
        async def count() -> int:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                return await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                )
            finally:
                await conn.close()

        return asyncio.run(count())

    # --- the test's view ---------------------------------------------------------------

    def task_processes(self) -> list[subprocess.Popen]:
        return [p for e in self.executions.values() for p, _ in e.tasks]

    def close(self) -> None:
        for revision in self.revisions:
            revision.instance.stop()
        for process in self.task_processes():
            stop_popen(process)
