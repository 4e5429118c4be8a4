"""The kit's verdict on the run's trace. When the toolkit's OpenTelemetry control
(chaostoolkit-opentracing's `chaostracing.oltp`, the kit's `otel` extra) traces a run,
the experiment's span is the current one as the run ends; it gets `chaoskit.verdict` and
`chaoskit.reason`, so that a tracing backend (Cloud Trace on Google Cloud) can find the
runs that reproduced. Without the extra nothing is traced and this does nothing.

An endpoint that cannot be reached costs the traces, never the run: one warning line
says so, and the exporter's retries stay quiet."""

from __future__ import annotations

import logging
import os
import socket
import sys
from urllib.parse import urlsplit

__all__ = ["check_trace_endpoint", "put_verdict_on_trace"]

logger = logging.getLogger("chaostoolkit")
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_CONNECT_TIMEOUT_S = 2.0


def check_trace_endpoint() -> str | None:
    """When the toolkit's OpenTelemetry control traces this run, whether its OTLP
    endpoint answers; if not, warn once, quiet the exporter and return why."""
    if "chaostracing.oltp" not in sys.modules:
        return None
    variable = next((v for v in _ENDPOINT_VARIABLES if os.environ.get(v)), None)
    if variable is None:
        return None
    url = urlsplit(os.environ[variable])
    port = url.port or (443 if url.scheme == "https" else 4318)
    try:
        socket.create_connection((url.hostname or "", port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        why = f"{variable}={url.scheme}://{url.hostname}:{port} is unreachable ({reason})"
        logger.warning(f"OpenTelemetry: {why}: the run goes on, untraced")
        # the exporter would log each retry and the batch it drops
        logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL + 1)
        logging.getLogger("opentelemetry.sdk.trace.export").setLevel(logging.CRITICAL + 1)
        return why
    return None


def put_verdict_on_trace(verdict: str, reason: str) -> None:
    """Set the verdict and its reason on the current span, when one records."""
    try:
        from opentelemetry import trace
    except ImportError:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({"chaoskit.verdict": verdict, "chaoskit.reason": reason})
