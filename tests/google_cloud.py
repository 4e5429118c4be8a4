"""Google Cloud resources as Google keeps them, behind the fake's routes, on Google's
clock (`tests.gcp_fake.GoogleClock`).

`CloudRunService` is a service with revisions: its answers carry output-only fields,
full resource names, an `etag`, the name of the revision serving and `trafficStatuses`;
a PATCH applies its `updateMask` (or replaces the service, output-only fields ignored),
names a new revision unless the template names one, refuses with 409 a revision name
that exists with another configuration, and resolves each image tag to a digest at that
moment, as Cloud Run does. A rollout takes time: its container starts
`revision_start_s` after the PATCH, and the operation ends `traffic_s` after the
revision became ready (at once when it failed).

Rollouts move on by themselves, as Google's do, whether or not anyone asks; once a
revision takes the traffic, the instances of those before it are stopped
(`retire(revision)`), as Cloud Run scales a revision without traffic to zero.

`Operations` are long-running operations that end after `operation_s`.

`CloudLogging` answers `entries.list` as Logging does: the filter in the Logging query
language (time bound included), `orderBy`, answers in pages, the first page of a search
empty with a `nextPageToken` ("the search goes on"); a line reaches the list up to
`log_delay_s` after it was written, so lines can be listed out of their order.

`CloudMonitoring` answers `timeSeries.list` as Monitoring does: each metric sampled
every `period_s` and visible only `lag_s` later (the figures of Google's metrics list),
aligned by `aggregation` (mean, max, min, sum, percentiles of a distribution) into
windows ending at the interval's end, newest first. Beside the metrics: SLOs over a
Cloud Run service's requests (`serviceLevelObjectives.get`, and the
`select_slo_burn_rate` selector computed from the requests Monitoring shows), and
metric-threshold alert policies (`alertPolicies.get`) that Monitoring evaluates on the
points it shows, each period, opening and closing alerts (`alerts.list` with an
AIP-160 filter checked against the Alert resource of the discovery document). Names
come back with the project's number, as Google gives them.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.gcp_fake import FakeGoogle, Request, error
from tests.google_spec import camel, spec
from tests.logging_query import lower_time_bound, matches, parse_query

Answer = tuple[int, Any]
Rollout = Callable[[], dict[str, Any]]  # the rollout operation's state: done, error


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _digest(image: str, generation: int) -> str:
    return "sha256:" + hashlib.sha256(f"{image}#{generation}".encode()).hexdigest()


def _repository(image: str) -> str:
    image = image.split("@", 1)[0]
    name_start = image.rfind("/") + 1
    return image[: image.rindex(":")] if ":" in image[name_start:] else image


def _get_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = copy.deepcopy(value)


class Operations:
    """Long-running operations (google.longrunning) of one API and location, each done
    `operation_s` after it began, with its `response` then (and `on_done` run once)."""

    def __init__(self, google: FakeGoogle, prefix: str, location: str) -> None:
        self.google, self.location = google, location
        self._ops: dict[str, tuple[float, Callable[[], dict[str, Any]]]] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._count = itertools.count(1)
        google.on("GET", f"/{prefix}/{location}/operations/(op-[0-9]+)", self._get)

    def start(self, state: Callable[[], dict[str, Any]], after_s: float | None = None) -> dict:
        """An operation whose `state()` (`{"response": ...}` or `{"error": ...}`) it takes
        once done; returns the operation as first answered."""
        wait = self.google.clock.operation_s if after_s is None else after_s
        name = f"op-{next(self._count)}"
        self._ops[name] = (time.monotonic() + self.google.clock.seconds(wait), state)
        return {"name": f"{self.location}/operations/{name}", "done": False}

    def _get(self, request: Request, match: re.Match[str]) -> Answer:
        done_at, state = self._ops[match.group(1)]
        answer: dict[str, Any] = {"name": f"{self.location}/operations/{match.group(1)}"}
        if time.monotonic() < done_at:
            return 200, {**answer, "done": False}
        if match.group(1) not in self._results:  # the change is made once
            self._results[match.group(1)] = state()
        return 200, {**answer, "done": True, **self._results[match.group(1)]}


class VpcConnector:
    """A Serverless VPC Access connector: `connectors.patch` takes effect when its
    operation ends, and is refused as the API refuses it: the instance bounds it is
    sent must have min below max (absent is 0), within 2..10, and never below the
    connector's (it never scales in)."""

    MACHINE_TYPES = ("f1-micro", "e2-micro", "e2-standard-4")

    def __init__(
        self, google: FakeGoogle, name: str, machine: str = "e2-micro", low: int = 2, high: int = 10
    ) -> None:
        self.name = name
        self.connector = {
            "name": name,
            "state": "READY",
            "machineType": machine,
            "minInstances": low,
            "maxInstances": high,
        }
        location = name.rsplit("/connectors/", 1)[0]
        self.operations = Operations(google, "v1", location)
        google.on("GET", f"/v1/{name}", lambda r, m: (200, self.connector))
        google.on("PATCH", f"/v1/{name}", self._patch)

    def _patch(self, request: Request, match: re.Match[str]) -> Answer:
        fields = request.query["updateMask"][0].split(",")
        sent = {f: request.body.get(f) for f in fields}
        low, high = sent.get("minInstances") or 0, sent.get("maxInstances") or 0
        if not 2 <= low < high <= 10:
            return error(
                400,
                "INVALID_ARGUMENT",
                f"min_instances ({low}) must be at least 2 "
                f"and less than max_instances ({high}), at most 10",
            )
        if low < self.connector["minInstances"] or high < self.connector["maxInstances"]:
            return error(400, "INVALID_ARGUMENT", "a connector's instances cannot be lowered")
        machine = sent.get("machineType", self.connector["machineType"])
        if machine not in self.MACHINE_TYPES:
            return error(400, "INVALID_ARGUMENT", f"machine type {machine} is not supported")

        def applied() -> dict[str, Any]:
            self.connector.update(sent)
            return {"response": self.connector}

        return 200, self.operations.start(applied)


@dataclass
class _Rollout:
    revision: str
    start_at: float
    state: Rollout | None = None
    ready_at: float | None = None


class CloudRunService:
    """One Cloud Run service, deployed (by `gcloud run deploy --revision-suffix`) as
    revision `<name>-v1` of `image`, its tag resolved to a digest."""

    OUTPUT_ONLY = (
        "uid",
        "generation",
        "createTime",
        "updateTime",
        "creator",
        "lastModifier",
        "uri",
        "conditions",
        "terminalCondition",
        "latestReadyRevision",
        "latestCreatedRevision",
        "observedGeneration",
        "reconciling",
        "trafficStatuses",
        "etag",
    )
    LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"

    def __init__(
        self,
        google: FakeGoogle,
        location: str,
        name: str,
        image: str,
        vpc_access: dict[str, Any] | None = None,
        service_account: str | None = None,
        start: Callable[[str], Rollout] | None = None,
        retire: Callable[[str], None] | None = None,
    ) -> None:
        self.google, self.clock = google, google.clock
        self.retire = retire or (lambda revision: None)
        self._closed = threading.Event()
        self.name = f"{location}/services/{name}"
        self.short, self.location = name, location
        self.tags: dict[str, str] = {}  # Artifact Registry: image tag -> digest
        self.push(image)
        self.revisions: dict[str, dict[str, Any]] = {}
        self.rollouts: dict[str, _Rollout] = {}
        self.start = start or (lambda revision: lambda: {"done": True})
        self._lock = threading.RLock()
        template: dict[str, Any] = {
            "revision": f"{name}-v1",
            "containers": [{"name": f"{name}-1", "image": image}],
        }
        if vpc_access:
            template["vpcAccess"] = vpc_access
        if service_account:
            template["serviceAccount"] = service_account
        created = _now()
        self.service: dict[str, Any] = {
            "name": self.name,
            "uid": str(uuid.uuid4()),
            "generation": "0",
            "createTime": created,
            "updateTime": created,
            "creator": "deployer@example.com",
            "lastModifier": "deployer@example.com",
            "uri": f"https://{name}-abc.a.run.app",
            "ingress": "INGRESS_TRAFFIC_ALL",
            "launchStage": "GA",
            "reconciling": False,
            "template": template,
            "traffic": [{"type": self.LATEST, "percent": 100}],
        }
        self._new_revision(template["revision"], template, ready=True)
        path = f"/v2/{self.name}"
        google.on("GET", path, self._get)
        google.on("PATCH", path, self._patch)
        google.on("GET", f"{path}/revisions/([^/]+)", self._get_revision)
        google.on("GET", f"/v2/{location}/operations/(rollout-[0-9]+)", self._operation)
        self._thread = threading.Thread(target=self._advance_forever, daemon=True)
        self._thread.start()
        google.closers.append(self.close)

    def _advance_forever(self) -> None:
        while not self._closed.wait(0.05):
            self._advance()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)

    # --- what a test does to it ---------------------------------------------------------

    def push(self, image: str) -> str:
        """Push `image` (a tag) again: it now names a new digest."""
        self.tags[image] = _digest(image, len(self.tags) + 1)
        return self.tags[image]

    def revision(self, name: str) -> dict[str, Any]:
        return self.revisions[name.rsplit("/", 1)[-1]]

    def pin_traffic(self, revision: str) -> None:
        """Send all traffic to `revision`, as `gcloud run services update-traffic
        --to-revisions REVISION=100` does: new revisions then take none."""
        self.service["traffic"] = [
            {
                "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                "revision": revision,
                "percent": 100,
            }
        ]

    # --- Cloud Run's behaviour ----------------------------------------------------------

    def _resolve(self, image: str) -> str:
        if "@" in image:
            return image
        return f"{_repository(image)}@{self.tags[image]}"

    def _new_revision(self, name: str, template: dict[str, Any], ready: bool = False) -> str:
        full = f"{self.name}/revisions/{name}"
        containers = template.get("containers") or []
        self.revisions[name] = {
            "name": full,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            "createTime": _now(),
            "service": self.name,
            "labels": dict(template.get("labels") or {}),
            "containers": copy.deepcopy(containers),
            "vpcAccess": copy.deepcopy(template.get("vpcAccess")),
            "containerStatuses": [
                {"name": c.get("name"), "imageDigest": self._resolve(c["image"])}
                for c in containers
            ],
            "conditions": [{"type": "Ready", "state": "CONDITION_PENDING"}],
            "template": copy.deepcopy(template),
        }
        generation = int(self.service["generation"]) + 1
        self.service.update(
            generation=str(generation),
            observedGeneration=str(generation),
            updateTime=_now(),
            etag=f'"{uuid.uuid4().hex}"',
            latestCreatedRevision=full,
        )
        if ready:
            self._became_ready(name)
        return full

    def _became_ready(self, name: str) -> None:
        self.revisions[name]["conditions"] = [{"type": "Ready", "state": "CONDITION_SUCCEEDED"}]
        self.service["latestReadyRevision"] = self.revisions[name]["name"]
        self.service["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED"}

    def _traffic_statuses(self) -> list[dict[str, Any]]:
        statuses = []
        for target in self.service.get("traffic") or []:
            revision = target.get("revision")
            if target.get("type") == self.LATEST:
                revision = self.service["latestReadyRevision"].rsplit("/", 1)[-1]
            statuses.append(
                {"type": target["type"], "revision": revision, "percent": target.get("percent", 0)}
            )
        return statuses

    def _advance(self) -> dict[str, dict[str, Any]]:
        """Move every rollout on by the clock: start its container when due; the
        operation's answer for each (not yet done, done, or failed)."""
        answers = {}
        with self._lock:
            now = time.monotonic()
            for operation, rollout in self.rollouts.items():
                if rollout.state is None:
                    if now < rollout.start_at:
                        answers[operation] = {"done": False}
                        continue
                    rollout.state = self.start(rollout.revision)
                state = rollout.state()
                if state.get("error"):
                    self.revisions[rollout.revision]["conditions"] = [
                        {
                            "type": "Ready",
                            "state": "CONDITION_FAILED",
                            "message": state["error"]["message"],
                        }
                    ]
                    answers[operation] = state
                elif state.get("done"):
                    if rollout.ready_at is None:
                        rollout.ready_at = now
                        self._became_ready(rollout.revision)
                        if any(t.get("type") == self.LATEST for t in self.service["traffic"]):
                            self.retire(rollout.revision)
                    routed = now >= rollout.ready_at + self.clock.seconds(self.clock.traffic_s)
                    answers[operation] = {"done": routed}
                else:
                    answers[operation] = {"done": False}
            self.service["trafficStatuses"] = self._traffic_statuses()
        return answers

    def _get(self, request: Request, match: re.Match[str]) -> Answer:
        self._advance()
        return 200, self.service

    @staticmethod
    def _configuration(template: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in template.items() if key != "revision"}

    def _patch(self, request: Request, match: re.Match[str]) -> Answer:
        body = {k: v for k, v in request.body.items() if k not in self.OUTPUT_ONLY or k == "etag"}
        if body.get("etag") not in (None, self.service["etag"]):
            return error(409, "ABORTED", "the service changed since it was read (etag)")
        body.pop("etag", None)
        updated = copy.deepcopy(self.service)
        masks = request.query.get("updateMask")
        if masks:
            for path in masks[0].split(","):
                if path.split(".")[0] not in self.OUTPUT_ONLY:  # ignored (AIP-203)
                    _set_path(updated, path, _get_path(body, path))
        else:  # the body is the whole service, output-only fields aside
            updated = {**{k: v for k, v in updated.items() if k in self.OUTPUT_ONLY}, **body}
        template = updated.setdefault("template", {})
        name = template.get("revision")
        if name and not name.startswith(f"{self.short}-"):
            return error(
                400,
                "INVALID_ARGUMENT",
                f"Revision name {name} must be prefixed by "
                f"the name of the enclosing Service: {self.short}",
            )
        if name in self.revisions:
            existing = self.revisions[name]["template"]
            if self._configuration(existing) != self._configuration(template):
                return error(
                    409,
                    "ALREADY_EXISTS",
                    f"Revision named '{name}' with different configuration already exists.",
                )
        for container in template.get("containers") or []:
            if "@" not in container["image"] and container["image"] not in self.tags:
                return error(400, "INVALID_ARGUMENT", f"Image '{container['image']}' not found.")
        with self._lock:
            kept = {k: v for k, v in self.service.items() if k in self.OUTPUT_ONLY}
            self.service = {**updated, **kept}
            generation = int(self.service["generation"]) + 1
            name = name or f"{self.short}-{generation:05d}-{uuid.uuid4().hex[:3]}"
            self._new_revision(name, template)
            operation = f"rollout-{len(self.rollouts) + 1}"
            start_at = time.monotonic() + self.clock.seconds(self.clock.revision_start_s)
            self.rollouts[operation] = _Rollout(name, start_at)
        return 200, {"name": f"{self.location}/operations/{operation}", "done": False}

    def _operation(self, request: Request, match: re.Match[str]) -> Answer:
        operation = match.group(1)
        answers = self._advance()
        if operation not in answers:
            return error(404, "NOT_FOUND", f"Operation {operation} not found")
        return 200, {"name": f"{self.location}/operations/{operation}", **answers[operation]}

    def _get_revision(self, request: Request, match: re.Match[str]) -> Answer:
        self._advance()
        revision = self.revisions.get(match.group(1))
        if revision is None:
            return error(404, "NOT_FOUND", f"Revision {match.group(1)} not found")
        return 200, {k: v for k, v in revision.items() if k != "template"}


# --- Cloud Logging ---------------------------------------------------------------------------


class CloudLogging:
    """Cloud Logging of one project. Entries are written by the test (listed at once),
    or drawn from sources (functions returning all a resource has logged so far, each
    entry with a key of its own): a line gets the moment it is first seen as its
    timestamp, as lines reach Logging, and is listed up to `log_delay_s` later."""

    def __init__(self, google: FakeGoogle, project: str, page_size: int = 2) -> None:
        self.google, self.clock = google, google.clock
        self.project, self.page_size = project, page_size
        self.entries: list[dict[str, Any]] = []
        self._listed_at: dict[str, float] = {}  # insertId -> when entries.list shows it
        self.sources: list[Callable[[], list[tuple[Hashable, dict[str, Any]]]]] = []
        self._seen: set[Hashable] = set()
        self._searches: dict[str, list[dict[str, Any]]] = {}
        self._tokens = itertools.count(1)
        self._random = random.Random(google.limits.seed)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.filters: list[str] = []
        google.on("POST", "/v2/entries:list", self._list)
        self._thread = threading.Thread(target=self._ingest_forever, daemon=True)
        self._thread.start()
        google.closers.append(self.close)

    def write(
        self, entry: dict[str, Any], at: datetime | None = None, delay_s: float = 0.0
    ) -> None:
        """Log `entry` (at `at`, default now), listed `delay_s` Google seconds later."""
        with self._lock:
            moment = at or datetime.now(UTC)
            if self.entries and at is None:  # strictly after the last line, as Logging orders
                moment = max(
                    moment, _moment(self.entries[-1]["timestamp"]) + timedelta(microseconds=1)
                )
            stamped = {"insertId": uuid.uuid4().hex[:12], **entry, "timestamp": _iso(moment)}
            self.entries.append(stamped)
            self._listed_at[stamped["insertId"]] = time.monotonic() + self.clock.seconds(delay_s)

    def _ingest(self) -> None:
        for source in self.sources:
            for key, entry in source():
                if key not in self._seen:
                    self._seen.add(key)
                    self.write(entry, delay_s=self._random.uniform(0, self.clock.log_delay_s))

    def _ingest_forever(self) -> None:
        while not self._closed.wait(0.05):
            self._ingest()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)

    def _list(self, request: Request, match: re.Match[str]) -> Answer:
        body = request.body
        if body.get("resourceNames") != [f"projects/{self.project}"]:
            return error(400, "INVALID_ARGUMENT", f"resourceNames: {body.get('resourceNames')}")
        token = body.get("pageToken")
        if token is not None:
            found = self._searches.pop(token, None)
            if found is None:
                return error(400, "INVALID_ARGUMENT", f"pageToken {token} is not valid")
        else:
            query = body.get("filter", "")
            self.filters.append(query)
            tree = parse_query(query)  # the fake's rules refused a malformed one already
            if not lower_time_bound(tree):
                # the kit's own rule: Logging would search the last day, or all history
                return error(400, "INVALID_ARGUMENT", f"the filter has no time bound: {query}")
            now = time.monotonic()
            with self._lock:
                listed = [e for e in self.entries if self._listed_at[e["insertId"]] <= now]
            found = [e for e in listed if matches(tree, e)]
            order = body.get("orderBy", "timestamp asc")
            if order not in ("timestamp asc", "timestamp desc"):
                return error(400, "INVALID_ARGUMENT", f"orderBy {order!r}")
            found.sort(key=lambda e: e["timestamp"], reverse=order == "timestamp desc")
            # the first page of a search is empty: Logging is still looking
            return 200, {"nextPageToken": self._continue(found)}
        size = min(int(body.get("pageSize") or 50), self.page_size)
        page, rest = found[:size], found[size:]
        answer: dict[str, Any] = {"entries": page} if page else {}
        if rest:
            answer["nextPageToken"] = self._continue(rest)
        return 200, answer

    def _continue(self, rest: list[dict[str, Any]]) -> str:
        token = f"page-{next(self._tokens)}"
        self._searches[token] = rest
        return token


# --- Cloud Monitoring ------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric as Google's metrics list describes it: kind, value type, the monitored
    resource, "Sampled every `period_s` seconds. After sampling, data is not visible for
    up to `lag_s` seconds."""

    kind: str
    value_type: str  # DOUBLE, INT64 or DISTRIBUTION
    resource_type: str
    lag_s: float
    period_s: float = 60.0


METRICS = {
    "cloudsql.googleapis.com/database/cpu/utilization": Metric(
        "GAUGE", "DOUBLE", "cloudsql_database", 165
    ),
    "cloudsql.googleapis.com/database/postgresql/num_backends": Metric(
        "GAUGE", "INT64", "cloudsql_database", 165
    ),
    "vpcaccess.googleapis.com/connector/cpu/utilizations": Metric(
        "GAUGE", "DISTRIBUTION", "vpc_access_connector", 180
    ),
    "vpcaccess.googleapis.com/connector/instances": Metric(
        "GAUGE", "INT64", "vpc_access_connector", 180
    ),
    "run.googleapis.com/container/instance_count": Metric(
        "GAUGE", "INT64", "cloud_run_revision", 180
    ),
    "run.googleapis.com/request_count": Metric("DELTA", "INT64", "cloud_run_revision", 180),
}
REQUESTS = "run.googleapis.com/request_count"

# a reading: the monitored resource's labels, the metric's labels, the value (a list of
# values for a distribution)
Reading = tuple[dict[str, str], dict[str, str], Any]
_BUCKET_WIDTH = 0.05  # utilisation distributions: 20 linear buckets over 0..1
_ALIGNERS = ("ALIGN_NONE", "ALIGN_MEAN", "ALIGN_MAX", "ALIGN_MIN", "ALIGN_SUM")
_FILTER_TERM = re.compile(r'^(?P<path>[\w.]+)\s*=\s*"(?P<value>[^"]*)"$')


_BURN_RATE = re.compile(
    r'^select_slo_burn_rate\(\s*"(?P<slo>[^"]+)"\s*,\s*"(?P<lookback>[0-9]+'
    r'(?:\.[0-9]+)?)(?P<unit>ns|us|ms|s|m|h)"\s*\)$'
)
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_ALERT_TERM = re.compile(r'^(?P<path>[A-Za-z_][\w.]*)\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>\w+))$')
_ALERT_ORDER = re.compile(r"^(open_time|close_time)( desc)?$")


@dataclass
class ServiceLevelObjective:
    """An SLO of the requests of a Cloud Run service: good are those answered 2xx
    (`response_code_class` of the request count), `goal` of them must be."""

    service: str  # the Monitoring service's id
    slo_id: str
    goal: float
    run_service: str  # the Cloud Run service whose requests count
    display_name: str


@dataclass
class AlertPolicy:
    """A metric-threshold alert policy: an alert opens on a series of `metric_type`
    (those whose resource labels include `resource`) once every point Monitoring shows
    over `duration_s` of Google's is above `threshold`, and closes once the newest is
    not."""

    policy_id: str
    display_name: str
    metric_type: str
    resource: dict[str, str]
    threshold: float
    duration_s: float
    enabled: bool = True


@dataclass
class _Point:
    end: datetime
    visible_at: float
    value: Any


@dataclass
class _Series:
    metric_type: str
    resource: dict[str, str]
    labels: dict[str, str]
    points: list[_Point] = field(default_factory=list)


def _percentile(values: list[float], share: float) -> float:
    """The percentile of a distribution as Monitoring computes it: from its buckets,
    interpolated within the bucket the rank falls in."""
    counts: dict[int, int] = {}
    for value in values:
        bucket = min(int(value / _BUCKET_WIDTH), int(1 / _BUCKET_WIDTH) - 1)
        counts[bucket] = counts.get(bucket, 0) + 1
    rank, seen = share * len(values), 0
    for bucket in sorted(counts):
        if seen + counts[bucket] >= rank:
            return round(_BUCKET_WIDTH * (bucket + (rank - seen) / counts[bucket]), 6)
        seen += counts[bucket]
    return float(max(values))


def _distribution(values: list[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    buckets = [0] * int(1 / _BUCKET_WIDTH)
    for value in values:
        buckets[min(int(value / _BUCKET_WIDTH), len(buckets) - 1)] += 1
    return {
        "count": str(len(values)),
        "mean": mean,
        "sumOfSquaredDeviation": sum((v - mean) ** 2 for v in values),
        "bucketOptions": {
            "linearBuckets": {"numFiniteBuckets": len(buckets), "width": _BUCKET_WIDTH, "offset": 0}
        },
        "bucketCounts": [str(c) for c in buckets],
    }


class CloudMonitoring:
    """Cloud Monitoring of one project. `read(metric_type)` functions give each metric's
    readings now; a sampler takes them every period of the clock and keeps them
    invisible for the metric's lag (`lag_share` of it: 1.0, the longest Google
    documents, by default; a (low, high) range draws each point's lag from it)."""

    def __init__(
        self,
        google: FakeGoogle,
        project: str,
        lag_share: tuple[float, float] = (1.0, 1.0),
        sampling: bool = True,  # False: the test takes each sample (`sample`)
    ) -> None:
        self.google, self.clock, self.project = google, google.clock, project
        self.lag_share = lag_share
        self.readers: dict[str, Callable[[], list[Reading]]] = {}
        self.series: dict[tuple[str, Hashable, Hashable], _Series] = {}
        self.number = str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % 10**12)
        self.slos: dict[str, ServiceLevelObjective] = {}  # by services/S/...Objectives/ID
        self.policies: dict[str, AlertPolicy] = {}
        self.alerts: list[dict[str, Any]] = []
        self._open: dict[tuple[str, Hashable], dict[str, Any]] = {}  # policy, series -> alert
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._tokens = itertools.count(1)
        self._random = random.Random(google.limits.seed)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        projects = f"/v3/projects/(?:{project}|{self.number})"
        google.on("GET", f"/v3/projects/{project}/timeSeries", self._list)
        google.on("GET", f"{projects}/(services/[^/]+/serviceLevelObjectives/[^/]+)", self._get_slo)
        google.on("GET", f"{projects}/alertPolicies/([^/]+)", self._get_policy)
        google.on("GET", f"{projects}/alerts", self._list_alerts)
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)
        if sampling:
            self._thread.start()
            google.closers.append(self.close)

    def read(self, metric_type: str, reader: Callable[[], list[Reading]]) -> None:
        """Sample `metric_type` (one of METRICS) from `reader` from now on."""
        assert metric_type in METRICS, metric_type
        self.readers[metric_type] = reader

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def add_slo(
        self,
        service: str,
        slo_id: str,
        goal: float,
        run_service: str,
        display_name: str = "Checkout availability",
    ) -> str:
        """An SLO of `run_service`'s requests (read as REQUESTS); its name, as a user
        writes it (the project's id)."""
        slo = ServiceLevelObjective(service, slo_id, goal, run_service, display_name)
        self.slos[f"services/{service}/serviceLevelObjectives/{slo_id}"] = slo
        return f"projects/{self.project}/services/{service}/serviceLevelObjectives/{slo_id}"

    def add_alert_policy(self, policy: AlertPolicy) -> str:
        """An alert policy Monitoring evaluates each period; its name (the project's id)."""
        assert policy.metric_type in METRICS, policy.metric_type
        self.policies[policy.policy_id] = policy
        return f"projects/{self.project}/alertPolicies/{policy.policy_id}"

    def sample(self, at: datetime | None = None) -> None:
        """Take every metric's readings now (the sampler does, each period), then
        evaluate the alert policies on what Monitoring shows."""
        end = at or datetime.now(UTC)
        for metric_type, reader in list(self.readers.items()):
            lag = self.clock.seconds(
                METRICS[metric_type].lag_s * self._random.uniform(*self.lag_share)
            )
            try:
                readings = reader()
            except Exception:  # noqa: BLE001 - a resource that does not answer: no point
                continue
            for resource, labels, value in readings:
                key = (metric_type, tuple(sorted(resource.items())), tuple(sorted(labels.items())))
                with self._lock:
                    series = self.series.setdefault(
                        key, _Series(metric_type, dict(resource), dict(labels))
                    )
                    series.points.append(_Point(end, time.monotonic() + lag, value))
                    del series.points[:-500]
        self.evaluate()

    def _sample_forever(self) -> None:
        period = self.clock.seconds(60)
        while not self._closed.wait(period - time.time() % period):
            self.sample()

    def _list(self, request: Request, match: re.Match[str]) -> Answer:
        query = {key: values[0] for key, values in request.query.items()}
        if query.get("filter", "").startswith("select_slo_"):
            return self._slo_series(query)
        terms = [_FILTER_TERM.match(t.strip()) for t in query.get("filter", "").split(" AND ")]
        if not all(terms):
            return error(
                400,
                "INVALID_ARGUMENT",
                f'the fake reads `path = "value"` terms joined by AND: {query.get("filter")}',
            )
        wanted = {t["path"]: t["value"] for t in terms}  # type: ignore[index]
        metric_type = wanted.pop("metric.type", None)
        metric = METRICS.get(metric_type or "")
        if metric is None:
            return error(
                400, "INVALID_ARGUMENT", f"The filter names no known metric type: {metric_type!r}"
            )
        end = _moment(query["interval.endTime"])
        start = _moment(query.get("interval.startTime", query["interval.endTime"]))
        aligner = query.get("aggregation.perSeriesAligner", "ALIGN_NONE")
        if aligner not in _ALIGNERS and not re.fullmatch(
            r"ALIGN_PERCENTILE_(99|95|50|05)", aligner
        ):
            return error(
                400,
                "INVALID_ARGUMENT",
                f"the fake does not align by {aligner}: teach it before the kit sends it",
            )
        if aligner.startswith("ALIGN_PERCENTILE") and metric.value_type != "DISTRIBUTION":
            return error(
                400,
                "INVALID_ARGUMENT",
                f"{aligner} needs a distribution metric: {metric_type} is {metric.value_type}",
            )
        now = time.monotonic()
        answer = []
        with self._lock:
            chosen = [
                s
                for s in self.series.values()
                if s.metric_type == metric_type and self._selected(s, wanted)
            ]
            for series in chosen:
                points = [p for p in series.points if p.visible_at <= now and start <= p.end <= end]
                out = self._aligned(points, metric, aligner, query, end)
                if out:
                    answer.append(
                        {
                            "metric": {"type": metric_type, "labels": series.labels},
                            "resource": {"type": metric.resource_type, "labels": series.resource},
                            "metricKind": metric.kind,
                            "valueType": self._output_type(metric, aligner),
                            "points": out,
                        }
                    )
        return 200, {"timeSeries": answer} if answer else {}

    @staticmethod
    def _selected(series: _Series, wanted: dict[str, str]) -> bool:
        for path, value in wanted.items():
            scope, _, label = path.partition(".labels.")
            labels = series.resource if scope == "resource" else series.labels
            if labels.get(label) != value:
                return False
        return True

    @staticmethod
    def _output_type(metric: Metric, aligner: str) -> str:
        if aligner == "ALIGN_NONE":
            return metric.value_type
        if aligner in ("ALIGN_MAX", "ALIGN_MIN", "ALIGN_SUM") and metric.value_type == "INT64":
            return "INT64"
        return "DOUBLE"

    def _value(self, value: Any, metric: Metric) -> dict[str, Any]:
        if metric.value_type == "DISTRIBUTION":
            return {"distributionValue": _distribution(value)}
        if metric.value_type == "INT64":
            return {"int64Value": str(int(value))}
        return {"doubleValue": float(value)}

    def _aligned(
        self,
        points: list[_Point],
        metric: Metric,
        aligner: str,
        query: dict[str, str],
        end: datetime,
    ) -> list[dict[str, Any]]:
        points = sorted(points, key=lambda p: p.end, reverse=True)
        if aligner == "ALIGN_NONE":
            return [
                {
                    "interval": {"startTime": _iso(p.end), "endTime": _iso(p.end)},
                    "value": self._value(p.value, metric),
                }
                for p in points
            ]
        period = timedelta(seconds=float(query["aggregation.alignmentPeriod"].removesuffix("s")))
        windows: dict[int, list[Any]] = {}
        for point in points:  # window k holds (end - (k+1) period, end - k period]
            k = math.floor((end - point.end) / period)
            values = point.value if isinstance(point.value, list) else [point.value]
            windows.setdefault(k, []).extend(values)
        out = []
        for k in sorted(windows):
            values = windows[k]
            if aligner.startswith("ALIGN_PERCENTILE_"):
                value: float = _percentile(values, int(aligner.rsplit("_", 1)[1]) / 100)
            else:
                value = {
                    "ALIGN_MEAN": sum(values) / len(values),
                    "ALIGN_MAX": max(values),
                    "ALIGN_MIN": min(values),
                    "ALIGN_SUM": sum(values),
                }[aligner]
            window_end = end - k * period
            typed = (
                {"int64Value": str(int(value))}
                if self._output_type(metric, aligner) == "INT64"
                else {"doubleValue": float(value)}
            )
            out.append(
                {
                    "interval": {
                        "startTime": _iso(window_end - period),
                        "endTime": _iso(window_end),
                    },
                    "value": typed,
                }
            )
        return out

    # --- SLOs ------------------------------------------------------------------------------

    def _slo(self, name: str) -> ServiceLevelObjective | None:
        """The SLO a name gives, with the project's id or its number."""
        for project in (self.project, self.number):
            if name.startswith(f"projects/{project}/"):
                return self.slos.get(name.removeprefix(f"projects/{project}/"))
        return None

    def _get_slo(self, request: Request, match: re.Match[str]) -> Answer:
        slo = self.slos.get(match.group(1))
        if slo is None:
            return error(404, "NOT_FOUND", f"Requested entity was not found: {match.group(1)}")
        requests = (
            f'metric.type="{REQUESTS}" resource.type="cloud_run_revision" '
            f'resource.label."service_name"="{slo.run_service}"'
        )
        return 200, {
            "name": f"projects/{self.number}/{match.group(1)}",
            "displayName": slo.display_name,
            "goal": slo.goal,
            "rollingPeriod": "2419200s",
            "serviceLevelIndicator": {
                "requestBased": {
                    "goodTotalRatio": {
                        "goodServiceFilter": f'{requests} metric.label."response_code_class"="2xx"',
                        "totalServiceFilter": requests,
                    }
                }
            },
        }

    def _slo_series(self, query: dict[str, str]) -> Answer:
        """`select_slo_burn_rate(SLO, LOOKBACK)`: at each sampled minute the interval
        holds, the share of bad requests over the lookback ending there, over the error
        budget's share (1 - goal), from the request counts Monitoring shows now."""
        selector = _BURN_RATE.match(query["filter"])
        if selector is None:
            return error(
                400,
                "INVALID_ARGUMENT",
                "the fake reads select_slo_burn_rate(SLO, "
                f"LOOKBACK) alone: teach it first ({query['filter']})",
            )
        if any(key.startswith("aggregation.") for key in query):
            return error(
                400,
                "INVALID_ARGUMENT",
                "the fake does not align an SLO's selector: teach it before the kit sends it",
            )
        slo = self._slo(selector["slo"])
        if slo is None:
            return error(404, "NOT_FOUND", f"Requested entity was not found: {selector['slo']}")
        lookback = timedelta(seconds=float(selector["lookback"]) * _UNITS[selector["unit"]])
        end = _moment(query["interval.endTime"])
        start = _moment(query.get("interval.startTime", query["interval.endTime"]))
        now = time.monotonic()
        with self._lock:
            counted = [
                (p.end, p.value, s.labels.get("response_code_class"))
                for s in self.series.values()
                if s.metric_type == REQUESTS and s.resource.get("service_name") == slo.run_service
                for p in s.points
                if p.visible_at <= now
            ]
        points = []
        for moment in sorted({e for e, _, _ in counted if start <= e <= end}, reverse=True):
            window = [(v, c) for e, v, c in counted if moment - lookback < e <= moment]
            total = sum(v for v, _ in window)
            if total:
                bad = sum(v for v, c in window if c != "2xx")
                points.append(
                    {
                        "interval": {"startTime": _iso(moment), "endTime": _iso(moment)},
                        "value": {"doubleValue": bad / total / (1 - slo.goal)},
                    }
                )
        if not points:
            return 200, {}
        return 200, {
            "timeSeries": [{"metricKind": "GAUGE", "valueType": "DOUBLE", "points": points}]
        }

    # --- alert policies and their alerts ----------------------------------------------------

    def _get_policy(self, request: Request, match: re.Match[str]) -> Answer:
        policy = self.policies.get(match.group(1))
        if policy is None:
            return error(404, "NOT_FOUND", f"Requested entity was not found: {match.group(1)}")
        name = f"projects/{self.number}/alertPolicies/{policy.policy_id}"
        labels = "".join(f' AND resource.labels.{k} = "{v}"' for k, v in policy.resource.items())
        return 200, {
            "name": name,
            "displayName": policy.display_name,
            "enabled": policy.enabled,
            "combiner": "OR",
            "severity": "CRITICAL",
            "conditions": [
                {
                    "name": f"{name}/conditions/1",
                    "displayName": policy.display_name,
                    "conditionThreshold": {
                        "filter": f'metric.type = "{policy.metric_type}"{labels}',
                        "comparison": "COMPARISON_GT",
                        "thresholdValue": policy.threshold,
                        "duration": f"{policy.duration_s:g}s",
                    },
                }
            ],
        }

    def evaluate(self) -> None:
        """Each enabled policy on the points Monitoring shows now: an alert opens on a
        series whose points over the policy's duration are all above its threshold (one
        point per period at least), and closes once its newest point is not."""
        now = time.monotonic()
        with self._lock:
            for policy in self.policies.values():
                if not policy.enabled:
                    continue
                metric = METRICS[policy.metric_type]
                period = timedelta(seconds=self.clock.seconds(metric.period_s))
                duration = timedelta(seconds=self.clock.seconds(policy.duration_s))
                for key, series in self.series.items():
                    if series.metric_type != policy.metric_type or not all(
                        series.resource.get(k) == v for k, v in policy.resource.items()
                    ):
                        continue
                    shown = sorted(
                        (p for p in series.points if p.visible_at <= now),
                        key=lambda p: p.end,
                        reverse=True,
                    )
                    if not shown:
                        continue
                    held = [p for p in shown if shown[0].end - p.end < duration]
                    covered = len(held) >= max(1, round(duration / period))
                    above = covered and all(p.value > policy.threshold for p in held)
                    opened = self._open.get((policy.policy_id, key))
                    if above and opened is None:
                        self._open[(policy.policy_id, key)] = self._alert(policy, series)
                    elif opened is not None and shown[0].value <= policy.threshold:
                        opened.update(state="CLOSED", closeTime=_now())
                        del self._open[(policy.policy_id, key)]

    def _alert(self, policy: AlertPolicy, series: _Series) -> dict[str, Any]:
        alert = {
            "name": f"projects/{self.number}/alerts/{uuid.uuid4().hex[:16]}",
            "state": "OPEN",
            "openTime": _now(),
            "policy": {
                "name": f"projects/{self.number}/alertPolicies/{policy.policy_id}",
                "displayName": policy.display_name,
                "severity": "CRITICAL",
            },
            "resource": {
                "type": METRICS[policy.metric_type].resource_type,
                "labels": dict(series.resource),
            },
            "metric": {"type": policy.metric_type, "labels": dict(series.labels)},
        }
        self.alerts.append(alert)
        return alert

    def _list_alerts(self, request: Request, match: re.Match[str]) -> Answer:
        """`alerts.list`: an AIP-160 filter of `field = value` terms joined by AND (each
        field one of the Alert resource's, an enum's value one of its values), ordered
        by open_time or close_time (open_time desc by default), in pages of `pageSize`
        (50 by default, at most 1000)."""
        query = {key: values[0] for key, values in request.query.items()}
        token = query.get("pageToken")
        if token:
            found = self._pages.pop(token, None)
            if found is None:
                return error(400, "INVALID_ARGUMENT", f"pageToken {token} is not valid")
        else:
            terms, problem = self._alert_terms(query.get("filter", ""))
            if problem:
                return error(400, "INVALID_ARGUMENT", problem)
            order = query.get("orderBy", "open_time desc")
            orders = [_ALERT_ORDER.match(o.strip()) for o in order.split(",")]
            if not all(orders):
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    f"orderBy {order!r}: open_time or close_time, each with desc or not",
                )
            with self._lock:
                found = [
                    copy.deepcopy(a)
                    for a in self.alerts
                    if all(_get_path(a, path) == value for path, value in terms)
                ]
            for field_order in reversed(orders):
                key = "openTime" if field_order[1] == "open_time" else "closeTime"
                found.sort(key=lambda a, k=key: a.get(k) or "", reverse=bool(field_order[2]))
        size = int(query.get("pageSize") or 0)
        size = 50 if size <= 0 else min(size, 1000)
        answer: dict[str, Any] = {"alerts": found[:size]} if found else {}
        if found[size:]:
            token = f"alerts-{next(self._tokens)}"
            self._pages[token] = found[size:]
            answer["nextPageToken"] = token
        return 200, answer

    @staticmethod
    def _alert_terms(text: str) -> tuple[list[tuple[str, str]], str | None]:
        """The filter's terms, each (a camelCase path, the value), or what is wrong."""
        schemas = spec("monitoring").schemas
        terms = []
        for part in filter(None, (t.strip() for t in text.split(" AND "))):
            term = _ALERT_TERM.match(part)
            if term is None:
                return [], (f'the fake reads `field = "value"` terms joined by AND: {text}')
            path = ".".join(camel(piece) for piece in term["path"].split("."))
            schema: dict[str, Any] = schemas["Alert"]
            for piece in path.split("."):
                field_ = (schema.get("properties") or {}).get(piece)
                if field_ is None:
                    return [], f"Invalid filter: the Alert has no field {term['path']!r}"
                schema = schemas[field_["$ref"]] if "$ref" in field_ else field_
            value = term["quoted"] if term["quoted"] is not None else term["bare"]
            if "enum" in schema and value not in schema["enum"]:
                return [], f"Invalid filter: {term['path']} = {value!r}: one of {schema['enum']}"
            terms.append((path, value))
        return terms, None
