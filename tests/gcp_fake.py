"""A local stand-in for Google's APIs: records every request and answers from a script.

Each API lives under its own prefix (`<url>run/`, `<url>logging/`, ...: see
`endpoints`), and every request is checked against that API's published specification
(tests/google_spec.py) before any answer: one that breaks it gets Google's 400
INVALID_ARGUMENT and is kept in `violations`. So is a request that breaks a rule Google
documents in prose rather than in the documents (`Rule`s: Monitoring's alignment period,
Logging's page size and query language, `testIamPermissions`' permissions).

It keeps Google's clock, divided by one time scale (`GoogleClock`), and Google's limits
(`Limits`): a read quota per minute that answers 429, and 503s now and then. A
permission the test denies in the project gets 403 as Google answers it, unless granted
on the resource (or a parent) the call names; `testIamPermissions` answers likewise.

It also plays the OAuth token endpoint, so the real google-auth service-account flow
runs: requests must carry the token it issued.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.google_spec import VERSIONS, ApiSpec, spec
from tests.logging_query import LoggingQueryError, parse_query

TOKEN = "fake-token-for-tests"


@dataclass
class Request:
    api: str
    method: str
    path: str  # below the API's prefix: `/v2/projects/...`
    query: dict[str, list[str]]
    body: Any
    authorization: str | None
    method_id: str = ""  # the discovery document's, once the request is matched


def error(status: int, code: str, message: str) -> tuple[int, Any]:
    """An error answer in Google's shape."""
    return status, {"error": {"code": status, "status": code, "message": message}}


@dataclass
class GoogleClock:
    """Google's durations, in Google's seconds, run `time_scale` times faster here: a
    minute of Monitoring's sampling is `seconds(60)` of this machine's. Wall-clock
    moments (timestamps, intervals) stay this machine's own.

    The durations are Google's as documented where it documents them (Monitoring's
    sampling and visibility lags: see `tests.google_cloud.METRICS`), and on the slow
    side of what Cloud Run and Logging take where it does not."""

    time_scale: float = 1.0
    revision_start_s: float = 15.0  # a rollout's container starts after (scheduling, pull)
    traffic_s: float = 5.0  # a ready revision's rollout ends after (routing)
    task_start_s: float = 30.0  # a job execution's tasks start after
    operation_s: float = 5.0  # a job's, a connector's or Cloud SQL's change takes
    cancel_s: float = 5.0  # a cancelled execution's tasks get SIGTERM after
    log_delay_s: float = 10.0  # a log line is listed at most this long after it is written

    def seconds(self, google_s: float) -> float:
        return google_s / self.time_scale

    def sleep(self, google_s: float) -> None:
        time.sleep(self.seconds(google_s))


@dataclass
class Limits:
    """Google's limits: reads per minute per API (a minute of the clock's) answered 429
    RESOURCE_EXHAUSTED past the quota, and a share of requests answered 503 UNAVAILABLE.

    Logging's 60 reads a minute per project is Google's documented quota for
    `entries.list`; Monitoring's 6,000 too. The share of 503s is the test's choice."""

    reads_per_minute: dict[str, int] = field(
        default_factory=lambda: {"logging": 60, "monitoring": 6000}
    )
    unavailable_share: float = 0.0
    seed: int = 1278
    # the next answers, forced: (api or None for any, HTTP method or None, status) each once
    forced: list[tuple[str | None, str | None, int]] = field(default_factory=list)


_SERVICES = {"sqladmin": "cloudsql", "cloudresourcemanager": "resourcemanager"}
_VERBS = {"patch": "update"}
_COLLECTIONS = {"entries": "logEntries"}
# permissions no method of the documents is named after, which Google checks elsewhere
_OTHER_PERMISSIONS = {"iam.serviceAccounts.actAs", "cloudsql.instances.connect"}


# methods whose permission is not named after them
_PERMISSIONS = {
    "sql.operations.get": "cloudsql.instances.get",
    "monitoring.services.serviceLevelObjectives.get": "monitoring.slos.get",
}


def permission_for(api: str, method_id: str) -> str | None:
    """The IAM permission a method needs, by Google's naming (`run.services.update` for
    `run.projects.locations.services.patch`); None for testIamPermissions."""
    if method_id in _PERMISSIONS:
        return _PERMISSIONS[method_id]
    *resources, verb = method_id.split(".")[1:]
    if verb == "testIamPermissions":
        return None
    resources = [r for r in resources if r not in ("projects", "locations")] or ["projects"]
    resource = _COLLECTIONS.get(resources[-1], resources[-1])
    return f"{_SERVICES.get(api, api)}.{resource}.{_VERBS.get(verb, verb)}"


def _known_permissions() -> set[str]:
    known = set(_OTHER_PERMISSIONS)
    for api in VERSIONS:
        known |= {p for m in spec(api).methods if (p := permission_for(api, m.id))}
    return known


def _collections_under(document: dict[str, Any], method_id: str) -> set[str]:
    """The collection a testIamPermissions method belongs to and those nested in it."""

    def names(resource: dict[str, Any]) -> set[str]:
        found = set()
        for name, child in (resource.get("resources") or {}).items():
            found |= {name} | names(child)
        return found

    def search(resources: dict[str, Any]) -> set[str] | None:
        for name, resource in resources.items():
            if any(m["id"] == method_id for m in (resource.get("methods") or {}).values()):
                return {name} | names(resource)
            found = search(resource.get("resources") or {})
            if found is not None:
                return found
        return None

    found = search(document["resources"]) or set()
    return {_COLLECTIONS.get(name, name) for name in found}


Answer = tuple[int, Any] | Callable[[Request, re.Match[str]], tuple[int, Any]]
Rule = Callable[[Request, ApiSpec], list[str]]


class FakeGoogle:
    def __init__(self, clock: GoogleClock | None = None, limits: Limits | None = None) -> None:
        self.clock = clock or GoogleClock()
        self.limits = limits or Limits()
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.denied: set[str] = set()
        self.granted: dict[str, set[str]] = {}  # resource name -> permissions granted on it
        self.routes: list[tuple[str, re.Pattern[str], list[Answer]]] = []
        self.rules: list[Rule] = [
            _iam_permissions_rule(self),
            _alignment_rule(self.clock),
            _log_entries_rule,
        ]
        self.refused: list[tuple[int, str]] = []  # the 429s and 503s answered
        self.closers: list[Callable[[], None]] = []  # what runs on Google's clock here
        self._random = random.Random(self.limits.seed)
        self._reads: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path == "/token":
                    return self._answer(
                        200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
                    )
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode()
                api, _, path = parts.path[1:].partition("/")
                request = Request(
                    api,
                    self.command,
                    f"/{path}",
                    parse_qs(parts.query),
                    body,
                    self.headers.get("Authorization"),
                )
                fake.requests.append(request)
                self._answer(*fake._answer_for(request))

            def _answer(self, status: int, answer: Any) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def endpoints(self, *apis: str) -> dict[str, str]:
        """The `gcp.api_endpoints` that aim the kit's clients of `apis` here."""
        return {api: f"{self.url}{api}/" for api in apis or VERSIONS}

    def deny(self, *permissions: str) -> None:
        """Take `permissions` from the kit's account in the project: 403 for the calls
        that need them, unless granted on the resource they name."""
        self.denied.update(permissions)

    def grant(self, resource: str, *permissions: str) -> None:
        """Grant `permissions` on `resource` alone (a full resource name), as a role
        granted on a service, a job, a repository or a secret."""
        self.granted.setdefault(resource, set()).update(permissions)

    def holds(self, permission: str, resource: str) -> bool:
        """Whether the kit's account holds `permission` on `resource` (or a parent)."""
        if permission not in self.denied:
            return True
        return any(
            permission in granted and (resource == name or resource.startswith(f"{name}/"))
            for name, granted in self.granted.items()
        )

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer `method path` (a regex) with each answer in turn, the last one again.
        An answer is `(status, body)`, or a function of the request and the path's match
        that returns one (a fake with state)."""
        self.routes.append((method, re.compile(f"^{path}$"), list(answers)))

    def refuse_next(
        self, status: int, api: str | None = None, times: int = 1, method: str | None = None
    ) -> None:
        """Answer the next `times` requests (to `api` and with the HTTP `method`, or any)
        with `status` (429, 503)."""
        self.limits.forced += [(api, method, status)] * times

    def _limited(self, request: Request, read: bool) -> tuple[int, Any] | None:
        with self._lock:
            for index, (api, method, status) in enumerate(self.limits.forced):
                if api in (None, request.api) and method in (None, request.method):
                    del self.limits.forced[index]
                    return self._refusal(status, request)
            if self._random.random() < self.limits.unavailable_share:
                return self._refusal(503, request)
            quota = self.limits.reads_per_minute.get(request.api)
            if read and quota is not None:
                minute = int(time.monotonic() // self.clock.seconds(60))
                used = self._reads.get((request.api, minute), 0)
                if used >= quota:
                    return self._refusal(429, request)
                self._reads[(request.api, minute)] = used + 1
        return None

    def _refusal(self, status: int, request: Request) -> tuple[int, Any]:
        self.refused.append((status, request.method_id))
        if status == 429:
            return error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read "
                f"requests' and limit 'Read requests per minute' of service "
                f"'{request.api}.googleapis.com'",
            )
        return error(status, "UNAVAILABLE", "The service is currently unavailable.")

    def _answer_for(self, request: Request) -> tuple[int, Any]:
        if request.api not in VERSIONS:
            return error(404, "NOT_FOUND", f"no Google API is served under /{request.api}/")
        api = spec(request.api)
        problems = api.violations(request.method, request.path, request.query, request.body)
        method = api.method_for(request.method, request.path)
        if method is not None:
            request.method_id = method.id
            if not problems:
                problems = [p for rule in self.rules for p in rule(request, api)]
        if problems:
            self.violations += problems
            return error(400, "INVALID_ARGUMENT", "; ".join(problems))
        assert method is not None
        read = request.method == "GET" or method.id.rsplit(".", 1)[-1] in (
            "list",
            "testIamPermissions",
        )
        limited = self._limited(request, read)
        if limited is not None:
            return limited
        permission = permission_for(request.api, method.id)
        resource = request.path.split("/", 2)[2].split(":", 1)[0]
        if permission is not None and not self.holds(permission, resource):
            return error(403, "PERMISSION_DENIED", f"Permission '{permission}' denied on resource")
        if method.id.endswith(".testIamPermissions"):
            asked = request.body.get("permissions") or []
            return 200, {"permissions": [p for p in asked if self.holds(p, resource)]}
        for route_method, pattern, answers in self.routes:
            match = pattern.match(request.path)
            if route_method == request.method and match:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                return answer(request, match) if callable(answer) else answer
        return error(404, "NOT_FOUND", f"no route for {request.method} {request.path}")

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def close(self) -> None:
        for close in self.closers:
            close()
        self.server.shutdown()


def _iam_permissions_rule(google: FakeGoogle) -> Rule:
    """`testIamPermissions` refuses wildcards, permissions Google does not know, and, on
    a resource, permissions that do not apply to its kind (a secret's on a service)."""
    known = _known_permissions()

    def rule(request: Request, api: ApiSpec) -> list[str]:
        if not request.method_id.endswith(".testIamPermissions"):
            return []
        project_wide = request.method_id.startswith("cloudresourcemanager.projects.")
        collections = _collections_under(api.document, request.method_id)
        problems = []
        for permission in request.body.get("permissions") or []:
            if "*" in permission:
                problems.append(
                    f"Permissions with wildcards (such as '*' or 'storage.*') are "
                    f"not allowed: {permission!r}"
                )
            elif permission not in known:
                problems.append(f"Permission '{permission}' is not valid.")
            elif not project_wide and permission.split(".")[1] not in collections:
                problems.append(f"Permission '{permission}' is not valid for this resource.")
        return problems

    return rule


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def _alignment_rule(clock: GoogleClock) -> Rule:
    """Monitoring's aggregation: "The value must be at least 60 seconds", and "if a
    per-series aligner other than ALIGN_NONE is specified, this field is required"."""

    def rule(request: Request, api: ApiSpec) -> list[str]:
        problems = []
        for prefix in ("aggregation", "secondaryAggregation"):
            aligner = request.query.get(f"{prefix}.perSeriesAligner", ["ALIGN_NONE"])[0]
            periods = request.query.get(f"{prefix}.alignmentPeriod", [])
            if aligner != "ALIGN_NONE" and not periods:
                problems.append(f"{prefix}.alignmentPeriod is required with {aligner}")
            for period in periods:
                if _seconds(period) < clock.seconds(60):
                    problems.append(f"{prefix}.alignmentPeriod {period} is below 60 seconds")
        if (
            request.method_id.endswith("timeSeries.list")
            and "interval.endTime" not in request.query
        ):
            problems.append("interval.endTime is required")
        return problems

    return rule


def _log_entries_rule(request: Request, api: ApiSpec) -> list[str]:
    """Logging's `entries.list`: `pageSize` "If the value is negative or exceeds 1000,
    the request is rejected", and a filter in the Logging query language."""
    if request.method_id != "logging.entries.list":
        return []
    problems = []
    size = request.body.get("pageSize")
    if isinstance(size, int) and not 0 <= size <= 1000:
        problems.append(f"pageSize {size} is negative or exceeds 1000")
    try:
        parse_query(request.body.get("filter") or "")
    except LoggingQueryError as bad:
        problems.append(f"filter: {bad}")
    return problems


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(token_uri: str, pem: str) -> dict[str, str]:
    """A service account whose tokens the fake issues (its key signs the real JWT flow)."""
    return {
        "type": "service_account",
        "project_id": "netra-staging",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "chaos-kit@netra-staging.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
