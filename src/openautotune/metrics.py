"""The server's Prometheus metrics, and the hooks the rest of the server feeds them through.

Metric objects are process-global (prometheus_client's model). Under `serve --workers N` every worker
writes its values to files in `PROMETHEUS_MULTIPROC_DIR`, which `serve` sets before this module is
first imported, and `/metrics` (api/metrics.py) combines them: counters and histograms are summed,
and each gauge says how its workers' values combine. This module imports nothing of ours, so any
layer may feed it; the API only reads it.

Hooks for parts that are wired in later:
- `IngestLagProbe`: `/metrics` and `/health` read the ingest lag from a provider function
  `() -> (unprocessed batches, age in seconds of the oldest)`; until the log-first processor sets one,
  nothing lags: (0, 0.0).
- `record_processed(batches, events)`: the processor's throughput counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "openautotune_http_requests",
    "HTTP requests answered, by route template (`unmatched` for no route), method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "openautotune_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
PROCESSED_BATCHES = Counter(
    "openautotune_ingest_processed_batches", "Raw event batches the processor turned into exposure and event rows."
)
PROCESSED_EVENTS = Counter("openautotune_ingest_processed_events", "Events in the batches the processor processed.")
UPDATE_SECONDS = Histogram(
    "openautotune_update_duration_seconds",
    "Wall time of each engine update that ran, by autotune.",
    ["autotune_id"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
# Per process (a `pid` label under several workers): each process checks its own cache.
SPEC_CHECKED_NAME = "openautotune_spec_cache_checked_timestamp_seconds"
SPEC_CHECKED = Gauge(
    SPEC_CHECKED_NAME,
    "When a server process last compared its cached SDK specs with the database (Unix time).",
    multiprocess_mode="liveall",
)
# Summed over the live workers: 1 when one process of this installation runs the background loops.
LEADER = Gauge(
    "openautotune_leader",
    "1 in the process that holds the leader lock and runs the background loops (scheduler, processor).",
    multiprocess_mode="livesum",
)

# () -> (unprocessed batches, age in seconds of the oldest one).
IngestLag = Callable[[], tuple[int, float]]


def no_lag() -> tuple[int, float]:
    """The provider until a processor is wired: nothing is waiting to be processed."""
    return 0, 0.0


class IngestLagProbe:
    """Where `/metrics` and `/health` read the ingest lag; set `provider` to wire a processor's."""

    def __init__(self, provider: IngestLag = no_lag) -> None:
        self.provider = provider

    def read(self) -> tuple[int, float]:
        """(batches, seconds), never negative (may read the database: call from a worker thread)."""
        batches, seconds = self.provider()
        return max(0, int(batches)), max(0.0, float(seconds))


def record_processed(batches: int, events: int) -> None:
    """The processor calls this after each committed transaction."""
    PROCESSED_BATCHES.inc(batches)
    PROCESSED_EVENTS.inc(events)


def record_update(autotune_id: str, seconds: float) -> None:
    UPDATE_SECONDS.labels(autotune_id).observe(seconds)


def spec_checked() -> None:
    SPEC_CHECKED.set_to_current_time()


def set_leading(leading: bool) -> None:
    LEADER.set(1 if leading else 0)
