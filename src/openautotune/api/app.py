"""The FastAPI app factory: the one place (with cli/) where the pieces are wired together."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from openautotune import __version__, metrics
from openautotune.api import (
    cmab,
    console,
    docs_page,
    errors,
    health,
    rate_limit,
    results,
    reviews,
    sdk_client,
    sdk_events,
    sdk_specs,
)
from openautotune.api import metric_sources as metric_sources_api
from openautotune.api import metrics as metrics_api
from openautotune.api.batch_intake import BatchIntake
from openautotune.api.cors import SdkCors
from openautotune.api.exposure_batcher import ExposureBatcher
from openautotune.api.limits import BodySizeLimit
from openautotune.api.spec_cache import SpecCache
from openautotune.clock import Clock, SystemClock
from openautotune.service.ingest import Ingestor, log_processor
from openautotune.service.keys import KeyAuthenticator
from openautotune.settings import Settings
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.store.events import open_events
from openautotune.web import router as web_router


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    run_migrations: bool = True,
) -> FastAPI:
    settings = settings or Settings.from_env()
    if db is None:
        db = Database.from_url(settings.database_url)
        if settings.events_url:
            db.events = open_events(settings.events_url, db)
    if run_migrations:
        migrate.upgrade(db.engine)
        if db.events is not None:
            db.events.migrate((clock or SystemClock()).now_ms())
    app = FastAPI(
        title="openautotune",
        version=__version__,
        description="Self-hosted Bayesian bandits that speak Statsig's Autotune Console API and SDK protocol.",
        docs_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock or SystemClock()
    app.state.keys = KeyAuthenticator(db, ttl_seconds=settings.key_cache_seconds)
    app.state.ingest = Ingestor(db, app.state.clock)
    app.state.batch_intake = BatchIntake(db, app.state.clock, settings.ingest_mode, settings.queue_url)
    # The queue connection (if any) is closed with the app, not left for the garbage collector.
    app.router.on_shutdown.append(app.state.batch_intake.close)
    app.state.specs = SpecCache(db, settings.specs_refresh_seconds)
    app.state.specs.on_check = metrics.spec_checked
    # `/metrics` and `/health` read the ingest lag here; the processor sets `.provider` (docs/operations.md).
    app.state.ingest_lag = metrics.IngestLagProbe()
    if settings.ingest_mode == "log" and not settings.queue_url:
        # Batches logged in this database and not yet processed (queue mode: NATS' own consumer lag).
        app.state.ingest_lag.provider = functools.partial(log_processor.ingest_lag, db, app.state.clock)
    app.state.exposure_batcher = ExposureBatcher(app.state.ingest)
    app.state.contextual = cmab.ContextualDeciders(db)
    app.state.rate_limits = rate_limit.RateLimits(settings, db, app.state.clock)
    errors.install(app)
    rate_limit.install(app)
    docs_page.install(app)
    # Routes are matched in order: the client SDKs' initialize, called on every page view, goes first.
    app.include_router(sdk_client.router)
    app.include_router(console.router)
    app.include_router(metric_sources_api.router)
    app.include_router(reviews.router)
    app.include_router(results.router)
    app.include_router(sdk_events.router)
    app.include_router(sdk_specs.router)
    app.include_router(cmab.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(web_router.router)
    app.add_middleware(BodySizeLimit)
    # Outermost, so that even a 413 reaches the page readable (browser SDK paths only).
    app.add_middleware(SdkCors, allowed_origins=settings.cors_allowed_origins, keys=app.state.keys)
    app.add_middleware(metrics_api.RequestMetrics)  # outermost: counts every answer, 413s and preflights too
    return app
