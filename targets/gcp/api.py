"""Google API clients the kit can point anywhere, and their errors in one line.

chaostoolkit-google-cloud-platform builds its clients with Google's fixed endpoints, so
they cannot be aimed at a local fake; the kit therefore calls the same REST APIs with
the same client library (googleapiclient, with its bundled discovery documents), and
loads credentials the way chaosgcp does (`secrets.gcp.service_account_file` or
`service_account_info`, else the application default credentials).

Endpoints can be overridden per API with the configuration key `gcp_api_endpoints`
(e.g. `{"vpcaccess": "http://127.0.0.1:8085/"}`): the tests use it, and so can an
emulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chaoslib.types import Configuration, Secrets

from chaoskit.kit.errors import KitError

if TYPE_CHECKING:
    from google.auth.exceptions import GoogleAuthError
    from googleapiclient.discovery import Resource

__all__ = [
    "GoogleApiError",
    "call",
    "gcp_client",
    "log_poll_s",
    "log_window_start",
    "project_and_region",
    "read_log_entries",
    "wait_for_operation",
]

_POLL_EVERY_S = 2.0
_LOG_POLL_S = 5.0  # log lines take seconds to reach Cloud Logging
OPERATION_TIMEOUT_S = 900.0
_LOG_PAGE_SIZE = 1000
_CLOCK_SKEW = timedelta(seconds=60)
_HINTS = {
    403: "permission denied: grant the role the README lists for this call",
    404: "not found: check the project, region and name",
    # ALREADY_EXISTS (a name sent that another resource has, with other settings) or
    # ABORTED (the resource changed since it was read): Google's message says which
    409: "conflict: what the request names already exists in another form, or it changed "
    "since it was read",
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

    endpoint = ((configuration or {}).get("gcp_api_endpoints") or {}).get(api)
    try:
        return build(
            api,
            version,
            credentials=load_credentials(secrets),
            client_options={"api_endpoint": endpoint} if endpoint else None,
            static_discovery=True,
            cache_discovery=False,
        )
    except GoogleAuthError as error:
        raise KitError(_credentials_hint(error)) from None


def _credentials_hint(error: GoogleAuthError) -> str:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (
        f"Google Cloud credentials: {reason}; set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file, or run `gcloud auth application-default login`"
    )


def call(request: Any, what: str) -> dict[str, Any]:
    """Execute a request; an API error becomes one KitError line naming `what`."""
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


def log_window_start() -> str:
    """Where a read of what is about to happen starts in Cloud Logging: now, less a
    minute for this machine's clock running ahead of Google's (ISO 8601)."""
    return (datetime.now(UTC) - _CLOCK_SKEW).isoformat()


def log_poll_s(configuration: Configuration | None) -> float:
    """Seconds between two reads of Cloud Logging: `gcp_log_poll_s`, default 5."""
    return float((configuration or {}).get("gcp_log_poll_s", _LOG_POLL_S))


def wait_for_operation(
    get: Callable[[], Any],
    what: str,
    configuration: Configuration | None,
    is_done: Callable[[dict[str, Any]], bool] = lambda op: bool(op.get("done")),
    timeout_s: float = OPERATION_TIMEOUT_S,
) -> dict[str, Any]:
    """Poll a long-running operation until it is done; its error becomes KitError.
    It polls every `gcp_operation_poll_s` seconds of the configuration (default 2)."""
    poll_every_s = float((configuration or {}).get("gcp_operation_poll_s", _POLL_EVERY_S))
    deadline = time.monotonic() + timeout_s
    while True:
        operation = call(get(), what)
        if is_done(operation):
            error = operation.get("error")
            if error:
                detail = error.get("message") or json.dumps(error)
                raise KitError(f"{what}: the operation failed ({detail})")
            return operation
        if time.monotonic() > deadline:
            raise KitError(f"{what}: the operation did not finish in {timeout_s:.0f}s")
        time.sleep(poll_every_s)


def project_and_region(
    configuration: Configuration | None, project: str | None, region: str | None
) -> tuple[str, str]:
    """The project and region from the arguments, else the configuration's `gcp_project_id`
    and `gcp_region` (the staging profile's)."""
    configuration = configuration or {}
    project = project or configuration.get("gcp_project_id")
    region = region or configuration.get("gcp_region")
    if not project or not region:
        raise KitError(
            "the Google Cloud project and region are not set: pass project and region, or "
            "use a profile that sets gcp_project_id and gcp_region"
        )
    return project, region
