"""The FastAPI app factory: the one place (with cli/) where the pieces are wired together."""

from __future__ import annotations

from fastapi import FastAPI

from openautotune import __version__
from openautotune.api import cmab, console, docs_page, errors, health, results, sdk_client, sdk_events, sdk_specs
from openautotune.api.cors import SdkCors
from openautotune.api.exposure_batcher import ExposureBatcher
from openautotune.api.limits import BodySizeLimit
from openautotune.api.spec_cache import SpecCache
from openautotune.clock import Clock, SystemClock
from openautotune.service.ingest import Ingestor
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
    app.state.specs = SpecCache(db, settings.specs_refresh_seconds)
    app.state.exposure_batcher = ExposureBatcher(app.state.ingest)
    app.state.contextual = cmab.ContextualDeciders(db)
    errors.install(app)
    docs_page.install(app)
    # Routes are matched in order: the client SDKs' initialize, called on every page view, goes first.
    app.include_router(sdk_client.router)
    app.include_router(console.router)
    app.include_router(results.router)
    app.include_router(sdk_events.router)
    app.include_router(sdk_specs.router)
    app.include_router(cmab.router)
    app.include_router(health.router)
    app.include_router(web_router.router)
    app.add_middleware(BodySizeLimit)
    # Outermost, so that even a 413 reaches the page readable (browser SDK paths only).
    app.add_middleware(SdkCors, allowed_origins=settings.cors_allowed_origins, keys=app.state.keys)
    return app
