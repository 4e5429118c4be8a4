"""Google API clients the kit can point anywhere, and their errors in one line.

chaostoolkit-google-cloud-platform builds its clients with Google's fixed endpoints, so
they cannot be aimed at a local fake; the kit therefore calls the same REST APIs with
the same client library (googleapiclient, with its bundled discovery documents), and
loads credentials the way chaosgcp does (`secrets.gcp.service_account_file` or
`service_account_info`, else the application default credentials).

Endpoints can be overridden per API with the configuration's `gcp.api_endpoints`
(e.g. `{"vpcaccess": "http://127.0.0.1:8085/"}`): the tests use it, and so can an
emulator.

Google answers 429 when a quota is spent (Logging's reads are 60 a minute per project,
shared with everyone reading that project's logs) and 503 now and then: a read, a list
or an operation's poll is retried on 429 and 5xx with exponential backoff, a change
(POST, PATCH) only on 429 and 503, which Google answers before acting. The backoff
starts at `gcp.retry_s` (1) and gives up after `gcp.retry_for_s` (120), both seconds of
the configuration (`chaoskit.kit.settings.GcpSettings`: Google's clock as the kit
assumes it).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError
from chaoskit.kit.settings import RunSettings

if TYPE_CHECKING:
    from google.auth.exceptions import GoogleAuthError
    from googleapiclient.discovery import Resource

__all__ = [
    "GoogleApiError",
    "LogTail",
    "OperationRunning",
    "call",
    "gcp_client",
    "log_poll_s",
    "log_window_start",
    "operation_error",
    "project_and_region",
    "read_log_entries",
    "wait_for_operation",
]

_LOG_PAGE_SIZE = 1000
_RETRIED_READS = frozenset({429, 500, 502, 503, 504})
_RETRIED_CHANGES = frozenset({429, 503})  # answered before the change is made
_HINTS = {
    403: "permission denied: grant the role docs/staging.md lists for this call",
    404: "not found: check the project, region and name",
    # ALREADY_EXISTS (a name sent that another resource has, with other settings) or
    # ABORTED (the resource changed since it was read): Google's message says which
    409: "conflict: what the request names already exists in another form, or it changed "
    "since it was read",
    429: "quota exhausted, still after retries: wait a minute, or ask for more quota",
    503: "Google Cloud is unavailable, still after retries: try again later",
}


class GoogleApiError(KitError):
    """An API's error answer: its HTTP `status` and Google's status word (`reason`,
    e.g. FAILED_PRECONDITION), in one line."""

    def __init__(self, message: str, status: int, reason: str | None) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def gcp_client(
    api: str, version: str, configuration: Configuration | None, secrets: Secrets | None
) -> Resource:
    """A client for `api`/`version`, at its overridden endpoint if one is configured."""
    # imported here, as in `call`: Google's client libraries take a quarter of a second,
    # and every run imports this module, on the embedded testbed too
    from chaosgcp import load_credentials
    from google.auth.exceptions import GoogleAuthError
    from googleapiclient.discovery import build
    from googleapiclient.http import HttpRequest

    # each request carries the configuration its retries are timed by
    builder = type("KitRequest", (HttpRequest,), {"kit_configuration": configuration})
    endpoint = RunSettings.of(configuration).gcp.api_endpoints.get(api)
    try:
        client = build(
            api,
            version,
            credentials=load_credentials(_scoped(secrets)),
            client_options={"api_endpoint": endpoint} if endpoint else None,
            static_discovery=True,
            cache_discovery=False,
            requestBuilder=builder,
        )
    except GoogleAuthError as error:
        raise KitError(_credentials_hint(error)) from None
    return client


def _scoped(secrets: Secrets | None) -> Secrets | None:
    """chaosgcp's credentials: an activity is handed its `gcp` secrets alone, a control
    the experiment's whole secrets object, in which they are under `gcp`."""
    if isinstance(secrets, dict) and isinstance(secrets.get("gcp"), dict):
        return secrets["gcp"]
    return secrets


def _credentials_hint(error: GoogleAuthError) -> str:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (
        f"Google Cloud credentials: {reason}; set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file, or run `gcloud auth application-default login`"
    )


def _is_read(request: Any) -> bool:
    """A GET, or a list or a permissions test sent as POST (Logging's `entries.list`)."""
    verb = str(getattr(request, "methodId", "")).rsplit(".", 1)[-1]
    return request.method == "GET" or verb in ("list", "testIamPermissions")


def call(request: Any, what: str) -> dict[str, Any]:
    """Execute a request, retried as the module says; an API error becomes one KitError
    line naming `what`. The retries are timed by the configuration the request's client
    was built with."""
    configuration = getattr(request, "kit_configuration", None)
    retried = _RETRIED_READS if _is_read(request) else _RETRIED_CHANGES
    wait_s = RunSettings.of(configuration).gcp.retry_s
    give_up = time.monotonic() + RunSettings.of(configuration).gcp.retry_for_s
    while True:
        try:
            return _execute(request, what)
        except GoogleApiError as error:
            if error.status not in retried or time.monotonic() + wait_s > give_up:
                raise
        time.sleep(wait_s * random.uniform(0.5, 1.0))  # jittered, as Google advises
        wait_s *= 2


def _execute(request: Any, what: str) -> dict[str, Any]:
    import httplib2
    from google.auth.exceptions import GoogleAuthError
    from googleapiclient.errors import HttpError

    try:
        return request.execute(num_retries=0)
    except GoogleAuthError as error:  # e.g. a key that no longer exists, a refused token
        raise KitError(f"{what}: {_credentials_hint(error)}") from None
    except (OSError, httplib2.HttpLib2Error) as error:
        raise KitError(
            f"{what}: Google Cloud is unreachable ({type(error).__name__}): check the "
            "network, or gcp.api_endpoints if you set it"
        ) from None
    except HttpError as error:
        status = error.resp.status
        try:
            detail = json.loads(error.content)["error"]
            message, reason = detail["message"], detail.get("status")
        except (ValueError, KeyError, TypeError):
            message, reason = error.reason, None
        hint = _HINTS.get(status, f"HTTP {status}")
        raise GoogleApiError(f"{what}: {hint} ({message})", status, reason) from None


def read_log_entries(
    project: str,
    query: str,
    since: str,
    what: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> list[dict[str, Any]]:
    """Cloud Logging entries (API v2 `entries.list`, as chaosgcp's
    `get_logs_between_timestamps`) matching `query` from `since` (ISO 8601) on, oldest
    first.

    Every page is read: Logging may answer an empty page with a `nextPageToken` (the
    search goes on) and cuts a long answer into pages. The newest entries come first,
    as the API recommends for recent ones, and are turned round here.
    """
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": f'{query} AND timestamp >= "{since}"',
        "orderBy": "timestamp desc",
        "pageSize": _LOG_PAGE_SIZE,
    }
    entries = gcp_client("logging", "v2", configuration, secrets).entries()
    found: list[dict[str, Any]] = []
    while True:
        page = call(entries.list(body=body), what)
        found += page.get("entries") or []
        if not page.get("nextPageToken"):
            return found[::-1]
        body["pageToken"] = page["nextPageToken"]


class LogTail:
    """Reads what a query finds in Cloud Logging as it arrives: each read starts at the
    newest entry seen, less `gcp_log_delay_s` (a line may be listed after lines written
    later), rather than at `since` again, and keeps each entry once (by `insertId`)."""

    def __init__(
        self,
        project: str,
        query: str,
        since: str,
        what: str,
        configuration: Configuration | None,
        secrets: Secrets | None,
    ) -> None:
        self.project, self.query, self.what = project, query, what
        self.configuration, self.secrets = configuration, secrets
        self.since = _moment(since)
        self.entries: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def read(self) -> list[dict[str, Any]]:
        """Every entry found so far, oldest first."""
        start = self.since
        if self.entries:
            delay = timedelta(seconds=RunSettings.of(self.configuration).gcp.log_delay_s)
            start = max(start, _moment(self.entries[-1]["timestamp"]) - delay)
        new = read_log_entries(
            self.project, self.query, start.isoformat(), self.what, self.configuration, self.secrets
        )
        for entry in new:
            key = entry.get("insertId") or json.dumps(entry, sort_keys=True)
            if key not in self._seen:
                self._seen.add(key)
                self.entries.append(entry)
        self.entries.sort(key=lambda e: _moment(e["timestamp"]))
        return self.entries


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def log_window_start(configuration: Configuration | None = None) -> str:
    """Where a read of what is about to happen starts in Cloud Logging: now, less
    `gcp_clock_skew_s` for this machine's clock running ahead of Google's (ISO 8601)."""
    skew = timedelta(seconds=RunSettings.of(configuration).gcp.clock_skew_s)
    return (datetime.now(UTC) - skew).isoformat()


def log_poll_s(configuration: Configuration | None) -> float:
    """Seconds between two reads of Cloud Logging: `gcp_log_poll_s`, default 5."""
    return RunSettings.of(configuration).gcp.log_poll_s


def operation_error(error: dict[str, Any]) -> str:
    """An operation's error in words: its message, or its `errors[].message` joined
    (Cloud SQL's operations), else the error as JSON."""
    messages = [e.get("message") for e in error.get("errors") or [] if e.get("message")]
    return error.get("message") or "; ".join(messages) or json.dumps(error)


def wait_for_operation(
    get: Callable[[], Any],
    what: str,
    configuration: Configuration | None,
    is_done: Callable[[dict[str, Any]], bool] = lambda op: bool(op.get("done")),
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll a long-running operation every `gcp_operation_poll_s` (2) seconds until it
    is done, at most `timeout_s` (default `gcp_operation_timeout_s`, 900); its error
    becomes KitError; one still running then is OperationRunning."""
    poll_every_s = RunSettings.of(configuration).gcp.operation_poll_s
    if timeout_s is None:
        timeout_s = RunSettings.of(configuration).gcp.operation_timeout_s
    deadline = time.monotonic() + timeout_s
    while True:
        operation = call(get(), what)
        if is_done(operation):
            error = operation.get("error")
            if error:
                raise KitError(f"{what}: the operation failed ({operation_error(error)})")
            return operation
        if time.monotonic() > deadline:
            raise OperationRunning(f"{what}: the operation did not finish in {timeout_s:g}s")
        time.sleep(min(poll_every_s, max(0.0, deadline - time.monotonic())))


class OperationRunning(KitError):
    """A long-running operation still under way when the wait for it ended."""


def project_and_region(
    configuration: Configuration | None, project: str | None, region: str | None
) -> tuple[str, str]:
    """The project and region from the arguments, else the configuration's `gcp_project_id`
    and `gcp_region` (the staging profile's)."""
    gcp = RunSettings.of(configuration).gcp
    project = project or gcp.project_id
    region = region or gcp.region
    if not project or not region:
        raise KitError(
            "the Google Cloud project and region are not set: pass project and region, or "
            "use a profile that sets gcp_project_id and gcp_region"
        )
    return project, region
