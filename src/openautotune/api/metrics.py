"""`GET /metrics` (Prometheus text format) and the middleware that counts every HTTP request.

Under `serve --workers N` one worker answers a scrape for all of them: prometheus_client's
multi-process collector reads every worker's value files in `PROMETHEUS_MULTIPROC_DIR`. Three gauges
are computed at scrape time instead, because they are not one process's state:

- `openautotune_ingest_lag_batches` / `_seconds`: from the app's `IngestLagProbe` (a database-wide
  figure that any worker can read; (0, 0) until a processor wires its provider).
- `openautotune_spec_cache_age_seconds`: seconds since the live process that checked least recently
  last compared its cached SDK specs with the database. A process re-checks on the first request
  after `specs_refresh_seconds`, so on an idle server this grows without anything being stale.

No key is needed, like `/health`: the text names route templates and autotune ids, nothing more.
Expose it only where your Prometheus scrapes from (docs/operations.md).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openautotune import metrics
from openautotune.metrics import IngestLagProbe

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("openautotune.api")
router = APIRouter(tags=["Operations"])


class _Collected(Collector):
    """Metrics already collected, handed to `generate_latest` as one collector."""

    def __init__(self, collected: list[Metric]) -> None:
        self._collected = collected

    def collect(self) -> Iterable[Metric]:
        return iter(self._collected)


def _every_worker() -> list[Metric]:
    """This process's metrics, or every live and past worker's under several workers."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return list(REGISTRY.collect())
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    collected = list(registry.collect())
    for metric in collected:
        if metric.name == metrics.SPEC_CHECKED_NAME:
            # The supervisor (and a worker that has served no specs yet) never checked: no timestamp.
            metric.samples = [sample for sample in metric.samples if sample.value > 0]
    return collected


def _spec_cache_age(collected: list[Metric], now: float) -> float:
    checked = [
        sample.value
        for metric in collected
        if metric.name == metrics.SPEC_CHECKED_NAME
        for sample in metric.samples
        if sample.value > 0  # a process that has not served specs yet
    ]
    return max(0.0, now - min(checked)) if checked else 0.0


def render(probe: IngestLagProbe) -> bytes:
    """The whole exposition text (reads files and maybe the database: call from a worker thread)."""
    collected = _every_worker()
    batches: float
    seconds: float
    try:
        batches, seconds = probe.read()
    except Exception:  # one unreadable figure must not cost the scrape all the others
        log.exception("/metrics: the ingest lag cannot be read")
        batches, seconds = math.nan, math.nan
    derived: list[Metric] = [
        GaugeMetricFamily(
            "openautotune_ingest_lag_batches", "Received event batches not processed yet.", value=batches
        ),
        GaugeMetricFamily(
            "openautotune_ingest_lag_seconds", "Age of the oldest received batch not processed yet.", value=seconds
        ),
        GaugeMetricFamily(
            "openautotune_spec_cache_age_seconds",
            "Seconds since the live process that checked least recently last compared its cached specs "
            "with the database.",
            value=_spec_cache_age(collected, time.time()),
        ),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(collected + derived))
    return generate_latest(registry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
async def prometheus_metrics(request: Request) -> Response:
    """Requests, ingest lag, processor throughput, update durations and spec cache age (docs/operations.md)."""
    probe: IngestLagProbe = request.app.state.ingest_lag
    body = await run_in_threadpool(render, probe)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Counts each HTTP request by route template, method and status, and times it (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The router leaves the matched route in the scope: its template (`/v1/download_config_specs/
            # {key}`), never the raw path, keeps the number of series small whatever clients send.
            route = getattr(scope.get("route"), "path", None) or ("unmatched" if status == 404 else "other")
            metrics.REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
