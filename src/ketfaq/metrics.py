"""Prometheus metrics for the hosting team, scraped at ``GET /metrics`` (bearer token only).

With several workers (``ketfaq serve --workers N``) every process writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``ketfaq serve``) and a scrape adds them up, so the counts
are the server's, whichever worker answers the scrape. No question text is ever a label.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request, Response, status
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as _PROCESS_REGISTRY

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ketfaq.index import LoadedIndex

__all__ = ["ANSWERS", "FEEDBACK", "RequestMetrics", "index_served", "metrics_endpoint",
           "observe_build"]

REQUESTS = Counter("ketfaq_http_requests", "HTTP requests by route and status",
                   ["route", "method", "status"])
LATENCY = Histogram("ketfaq_http_request_duration_seconds", "Time to answer, by route", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ANSWERS = Counter("ketfaq_answers", "Answers by kind (crisis, no_match, ...): the crisis count, "
                  "and the no_match rate as no_match / all", ["kind"])
FEEDBACK = Counter("ketfaq_feedback", "Visitors' verdicts on answers", ["helpful", "kind"])
INDEX_INFO = Gauge("ketfaq_index_info", "1 for the index version being served", ["version"],
                   multiprocess_mode="livemax")
INDEX_BUILT = Gauge("ketfaq_index_built_timestamp_seconds", "When the served index was built "
                    "(age: time() - this)", multiprocess_mode="livemax")
BUILDS = Histogram("ketfaq_index_build_duration_seconds", "Index builds, start to published",
                   buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))


def index_served(index: LoadedIndex, previous: str | None = None) -> None:
    """Record which version this process serves (after start-up and every reload)."""
    import datetime as dt

    if previous and previous != index.version:
        INDEX_INFO.labels(previous).set(0)
    INDEX_INFO.labels(index.version).set(1)
    INDEX_BUILT.set(dt.datetime.fromisoformat(index.manifest.built_at).timestamp())


def observe_build(seconds: float) -> None:
    BUILDS.observe(seconds)


def _route_label(scope: Scope) -> str:
    """The route's template (``/api/ask``), never the raw path: random paths add no series."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    return "static" if path in ("", "/") else path


class RequestMetrics:
    """ASGI middleware counting every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, code = time.perf_counter(), 500

        async def counted(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            route = _route_label(scope)
            REQUESTS.labels(route, scope["method"], str(code)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - start)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return _PROCESS_REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_endpoint(token: str):  # type: ignore[no-untyped-def]
    """``GET /metrics``: 404 unless a metrics token is configured, 401 without it."""

    def metrics(request: Request) -> Response:
        if not token:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, token.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid metrics bearer token is required.",
                                headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

    return metrics
