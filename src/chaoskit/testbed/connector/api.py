"""The connector's control API, on loopback HTTP.

GET /state, PUT /config (validated: a bad value is a 400 naming the field, and nothing
changes), POST /reset (back to the starting configuration), GET /events?since=<epoch s>
(a `since` that is not a finite number is a 400), GET /metrics (Prometheus).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chaoskit.testbed.connector.config import ConfigError
from chaoskit.testbed.connector.metrics import metrics_registry
from chaoskit.testbed.connector.proxy import ConnectorProxy

__all__ = ["create_api"]


def create_api(proxy: ConnectorProxy) -> FastAPI:
    api = FastAPI(title="VPC connector model", docs_url=None, redoc_url=None)
    registry = metrics_registry(proxy)

    @api.get("/state")
    def state() -> dict[str, Any]:
        return proxy.snapshot()

    @api.put("/config", response_model=None)
    def put_config(changes: Any = Body(...)) -> dict[str, Any] | JSONResponse:  # noqa: B008
        if not isinstance(changes, dict):
            return JSONResponse({"error": "the body must be a JSON object of settings"}, 400)
        try:
            config = proxy.reconfigure(changes)
        except ConfigError as error:
            return JSONResponse({"error": str(error), "field": error.field}, 400)
        return config.to_dict()

    @api.post("/reset")
    def reset() -> dict[str, Any]:
        return proxy.reset().to_dict()

    @api.get("/events", response_model=None)
    def events(since: float = 0.0) -> list[dict[str, Any]] | JSONResponse:
        if not math.isfinite(since):
            return JSONResponse(
                {"error": f"since={since}: give seconds since the epoch", "field": "since"}, 400
            )
        return proxy.events.since(since)

    @api.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
