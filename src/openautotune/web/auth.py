"""Who is looking at the dashboard: the signed session, the console key behind it, CSRF checks."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from openautotune.clock import Clock
from openautotune.domain.autotune import Actor
from openautotune.service import dashboard_sessions, server_secrets
from openautotune.service import keys as key_service
from openautotune.service.dashboard_sessions import SessionLimits
from openautotune.service.keys import KeyAuthenticator
from openautotune.settings import Settings
from openautotune.store.database import Database
from openautotune.web import session as sessions
from openautotune.web.results import PointsCache
from openautotune.web.session import Session

DASHBOARD_ACTOR_NAME = "DASHBOARD"
CONSOLE_KIND = "console"
CSRF_FIELD = "csrf_token"


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def clock(request: Request) -> Clock:
    app_clock: Clock = request.app.state.clock
    return app_clock


def session_limits(request: Request) -> SessionLimits:
    settings: Settings = request.app.state.settings
    return SessionLimits.of(settings.session_idle_minutes, settings.session_max_hours)


def points_cache(request: Request) -> PointsCache:
    """The app's cache of parsed update histories (made on first use; one per app)."""
    cache: PointsCache | None = getattr(request.app.state, "web_points_cache", None)
    if cache is None:
        cache = PointsCache()
        request.app.state.web_points_cache = cache
    return cache


def _secret(request: Request) -> bytes:
    cached: bytes | None = getattr(request.app.state, "web_session_secret", None)
    if cached is None:
        value = server_secrets.get_or_create(database(request), clock(request), server_secrets.SESSION_SIGNING)
        cached = value.encode("ascii")
        request.app.state.web_session_secret = cached
    return cached


@dataclass(frozen=True)
class ConsoleKey:
    """The parts of a console key the dashboard needs (never the key itself)."""

    id: str
    read_only: bool
    hint: str


@dataclass(frozen=True)
class Visitor:
    """The current session; `key` is set only while its console key is still active."""

    session: Session
    key: ConsoleKey | None

    @property
    def signed_in(self) -> bool:
        return self.key is not None

    @property
    def can_act(self) -> bool:
        return self.key is not None and not self.key.read_only

    def actor(self) -> Actor:
        assert self.key is not None
        return Actor(id=self.key.id, name=DASHBOARD_ACTOR_NAME)


def _active_console_key(request: Request, key_id: str) -> ConsoleKey | None:
    """Re-checked on every request: a revoked key's session ends at once."""
    for record in key_service.list_keys(database(request)):
        if record.id == key_id:
            if not record.active or record.kind.value != CONSOLE_KIND:
                return None
            return ConsoleKey(id=record.id, read_only=record.read_only, hint=record.hint)
    return None


def _still_open(request: Request, found: Session, activity: bool) -> bool:
    """A signed-in cookie counts only while its server-side session is open (not signed out, not idle)."""
    if found.key_id is None or found.session_id is None:
        return False
    db, limits = database(request), session_limits(request)
    return dashboard_sessions.is_active(db, clock(request), found.session_id, found.key_id, limits, activity=activity)


def visitor(request: Request, *, activity: bool = True) -> Visitor | None:
    """The visitor behind this request's cookie; None when there is no valid session at all. `activity=False`
    for a page's background refreshes: they must not keep an unattended session from going idle."""
    cookie, ttl_ms = request.cookies.get(sessions.COOKIE_NAME), session_limits(request).absolute_ms
    found = sessions.decode(cookie, _secret(request), clock(request).now_ms(), ttl_ms)
    if found is None:
        return None
    key = None
    if found.key_id is not None and _still_open(request, found, activity):
        key = _active_console_key(request, found.key_id)
    return Visitor(session=found, key=key)


def authenticate_console_key(request: Request, raw_key: str) -> ConsoleKey | None:
    """A console key (read-write or read-only) behind `raw_key`, checked by the app's authenticator."""
    authenticator: KeyAuthenticator = request.app.state.keys
    record = authenticator.authenticate(raw_key.strip())
    if record is None or record.kind.value != CONSOLE_KIND:
        return None
    return ConsoleKey(id=record.id, read_only=record.read_only, hint=record.hint)


def csrf_ok(found: Visitor | None, form: FormData) -> bool:
    submitted = form.get(CSRF_FIELD)
    return found is not None and sessions.csrf_matches(found.session, submitted if isinstance(submitted, str) else None)


def store_session(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        sessions.encode(session, _secret(request)),
        max_age=session_limits(request).absolute_ms // 1000,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def new_anonymous_session(request: Request) -> Session:
    return sessions.new_anonymous(clock(request).now_ms())


def new_signed_in_session(request: Request, key: ConsoleKey) -> Session:
    """A new session for `key`, opened server-side too (a fresh id: nothing carries over from before)."""
    session_id = dashboard_sessions.open_session(database(request), clock(request), key.id, session_limits(request))
    return sessions.signed_in(key.id, key.read_only, clock(request).now_ms(), session_id)


def end_session(request: Request, found: Visitor) -> None:
    """Sign out server-side: the cookie (and any copy of it) opens nothing any more."""
    if found.session.session_id is not None:
        dashboard_sessions.close_session(database(request), found.session.session_id)


def clear_session(response: Response) -> None:
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax")
