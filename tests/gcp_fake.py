"""A local stand-in for Google's APIs: records every request and answers from a script.

Each API lives under its own prefix (`<url>run/`, `<url>logging/`, ...: see
`endpoints`), and every request is checked against that API's published specification
(tests/google_spec.py) before any answer: one that breaks it gets Google's 400
INVALID_ARGUMENT and is kept in `violations`. A permission the test denies gets 403 as
Google answers it, and `testIamPermissions` leaves it out.

It also plays the OAuth token endpoint, so the real google-auth service-account flow
runs: requests must carry the token it issued.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.google_spec import VERSIONS, spec

TOKEN = "fake-token-for-tests"


@dataclass
class Request:
    api: str
    method: str
    path: str  # below the API's prefix: `/v2/projects/...`
    query: dict[str, list[str]]
    body: Any
    authorization: str | None


def error(status: int, code: str, message: str) -> tuple[int, Any]:
    """An error answer in Google's shape."""
    return status, {"error": {"code": status, "status": code, "message": message}}


_SERVICES = {"sqladmin": "cloudsql", "cloudresourcemanager": "resourcemanager"}
_VERBS = {"patch": "update"}


def permission_for(api: str, method_id: str) -> str | None:
    """The IAM permission a method needs, by Google's naming (`run.services.update` for
    `run.projects.locations.services.patch`); None for testIamPermissions."""
    *resources, verb = method_id.split(".")[1:]
    if verb == "testIamPermissions":
        return None
    resources = [r for r in resources if r not in ("projects", "locations")] or ["projects"]
    resource = {"entries": "logEntries"}.get(resources[-1], resources[-1])
    return f"{_SERVICES.get(api, api)}.{resource}.{_VERBS.get(verb, verb)}"


Answer = tuple[int, Any] | Callable[[Request, re.Match[str]], tuple[int, Any]]


class FakeGoogle:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.denied: set[str] = set()
        self.routes: list[tuple[str, re.Pattern[str], list[Answer]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path == "/token":
                    return self._answer(200, {"access_token": TOKEN, "expires_in": 3600,
                                              "token_type": "Bearer"})  # fmt: skip
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
        """Take `permissions` from the kit's account: 403 for the calls that need them."""
        self.denied.update(permissions)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer `method path` (a regex) with each answer in turn, the last one again.
        An answer is `(status, body)`, or a function of the request and the path's match
        that returns one (a fake with state)."""
        self.routes.append((method, re.compile(f"^{path}$"), list(answers)))

    def _answer_for(self, request: Request) -> tuple[int, Any]:
        if request.api not in VERSIONS:
            return error(404, "NOT_FOUND", f"no Google API is served under /{request.api}/")
        api = spec(request.api)
        problems = api.violations(request.method, request.path, request.query, request.body)
        if problems:
            self.violations += problems
            return error(400, "INVALID_ARGUMENT", "; ".join(problems))
        method = api.method_for(request.method, request.path)
        assert method is not None
        permission = permission_for(request.api, method.id)
        if permission in self.denied:
            return error(403, "PERMISSION_DENIED", f"Permission '{permission}' denied on resource")
        if method.id.endswith(".testIamPermissions"):
            asked = request.body.get("permissions") or []
            return 200, {"permissions": [p for p in asked if p not in self.denied]}
        for route_method, pattern, answers in self.routes:
            match = pattern.match(request.path)
            if route_method == request.method and match:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                return answer(request, match) if callable(answer) else answer
        return error(404, "NOT_FOUND", f"no route for {request.method} {request.path}")

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()


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
