"""Dashboard pages: sign in and out, the list of autotunes, one autotune, and its actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from openautotune.domain.autotune import Autotune, Status
from openautotune.domain.errors import DomainError, InvalidInput, NotFound
from openautotune.domain.ids import could_be_autotune_id
from openautotune.service import autotunes as autotune_service
from openautotune.service import exposures_log, reviews
from openautotune.service import review_operations as change
from openautotune.web import auth, views
from openautotune.web.auth import Visitor
from openautotune.web.static import asset_version
from openautotune.web.templating import templates

router = APIRouter(include_in_schema=False)

ACTIONS = ("start", "decide", "reset")
DONE_MESSAGES = {
    "start": "Started. Traffic is now split for exploration.",
    "decide": "Decision made: the chosen variant now gets all traffic.",
    "reset": "Reset: a new run started; earlier runs stay readable.",
}
WRONG_KEY = "That is not an active console key. Check the key (it starts with console-) and try again."
EXPIRED_FORM = "This form has expired or did not come from this dashboard. Reload the page and try again."
READ_ONLY = "Your key is read-only: it can view autotunes but not change them."
LIST_PAGE_SIZE = 100
# Pages load only this site's own scripts (no inline script runs: figures travel as JSON data), cannot be
# framed (no clickjacking of the action buttons), and are never cached (they show live state).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
EXPOSURES_SHOWN = 25
MAX_REASON = 1000
MAX_LIST_PAGE = 1_000_000  # keeps the OFFSET inside a 64-bit integer


def _render(request: Request, template: str, found: Visitor | None, status_code: int = 200, **context: Any) -> Response:
    session = found.session if found is not None else auth.new_anonymous_session(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": found,
            "csrf_field": auth.CSRF_FIELD,
            "csrf_token": session.csrf,
            "css_version": asset_version("dashboard.css"),
            "js_version": asset_version("dashboard.js"),
            "plotly_version": asset_version("plotly.min.js"),
            **context,
        },
        status_code=status_code,
    )
    if found is None:
        auth.store_session(request, response, session)
    response.headers.update(PAGE_HEADERS)
    return response


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


@router.get("/login")
def login_page(request: Request, next: str | None = None, signed_out: bool = False) -> Response:
    found = auth.visitor(request)
    if found is not None and found.signed_in:
        return RedirectResponse(_safe_next(next), status_code=303)
    notice = "You are signed out." if signed_out else None
    return _render(request, "login.html", found, next=_safe_next(next), notice=notice)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    found = auth.visitor(request)
    target = _safe_next(_field(form, "next"))
    if not auth.csrf_ok(found, form):  # keeps any current session: a forged POST must not sign anyone out
        return _render(request, "login.html", found, 403, next=target, error=EXPIRED_FORM)
    key = auth.authenticate_console_key(request, _field(form, "key"))
    if key is None:
        return _render(request, "login.html", found, 401, next=target, error=WRONG_KEY)
    if found is not None:  # signing in again (another key, say): the session it replaces ends server-side
        auth.end_session(request, found)
    response = RedirectResponse(target, status_code=303)
    auth.store_session(request, response, auth.new_signed_in_session(request, key))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    found = auth.visitor(request)
    if not auth.csrf_ok(found, form):
        return _render(request, "message.html", found, 403, title="Form expired", message=EXPIRED_FORM)
    assert found is not None  # csrf_ok needs a session
    auth.end_session(request, found)
    response = RedirectResponse("/login?signed_out=true", status_code=303)
    auth.clear_session(response)
    return response


@router.get("/")
def autotune_list(request: Request, page: int = 1) -> Response:
    found = auth.visitor(request)
    if found is None or not found.signed_in:
        return _to_login(request)
    page = min(max(1, page), MAX_LIST_PAGE)
    db = auth.database(request)
    autotunes, total = autotune_service.page(db, LIST_PAGE_SIZE, page)
    rows = views.list_rows(db, autotunes, auth.clock(request).now_ms())
    last_page = max(1, -(-total // LIST_PAGE_SIZE))
    return _render(request, "list.html", found, rows=rows, total=total, page=page, last_page=last_page)


def _autotune_page(
    request: Request, found: Visitor, autotune_id: str, status_code: int = 200, error: str | None = None
) -> Response:
    db = auth.database(request)
    try:
        if not could_be_autotune_id(autotune_id):
            raise NotFound(autotune_service.NOT_FOUND)
        autotune = autotune_service.get(db, autotune_id)
    except NotFound:
        return _render(
            request, "message.html", found, 404, title="Not found", message=f"No autotune with id {autotune_id!r}."
        )
    done = request.query_params.get("done")
    page = views.autotune_page(db, autotune, auth.clock(request).now_ms(), auth.points_cache(request))
    return _render(
        request,
        "autotune.html",
        found,
        status_code,
        autotune=autotune,
        page=page,
        audit=autotune_service.audit_history(db, autotune.id, limit=50),
        exposures=exposures_log.recent(db, autotune.id, limit=EXPOSURES_SHOWN),
        variant_names=page.variant_names,
        notice=DONE_MESSAGES.get(done or ""),
        error=error,
        actions=_available_actions(autotune) if found.can_act else (),
    )


def _available_actions(autotune: Autotune) -> tuple[str, ...]:
    if autotune.status is Status.DRAFT:
        return ("start",)
    if autotune.status is Status.RUNNING:
        return ("decide", "reset")
    return ("reset",)


@router.get("/autotunes/{autotune_id}")
def autotune_detail(request: Request, autotune_id: str) -> Response:
    found = auth.visitor(request)
    if found is None or not found.signed_in:
        return _to_login(request)
    return _autotune_page(request, found, autotune_id)


@router.get("/autotunes/{autotune_id}/exposures")
def exposures_fragment(request: Request, autotune_id: str) -> Response:
    """The exposures log alone (HTML rows), which the autotune page re-fetches every few seconds."""
    found = auth.visitor(request, activity=False)  # polling is not someone using the dashboard
    if found is None or not found.signed_in:
        return Response("Sign in first.", status_code=401, media_type="text/plain")
    db = auth.database(request)
    try:
        if not could_be_autotune_id(autotune_id):
            raise NotFound(autotune_service.NOT_FOUND)
        autotune = autotune_service.get(db, autotune_id)
    except NotFound:
        return Response(autotune_service.NOT_FOUND, status_code=404, media_type="text/plain")
    response = templates.TemplateResponse(
        request,
        "_exposures.html",
        {
            "exposures": exposures_log.recent(db, autotune.id, limit=EXPOSURES_SHOWN),
            "variant_names": {variant.id: variant.name for variant in autotune.definition.variants},
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/autotunes/{autotune_id}/confirm/{action}")
def confirm(request: Request, autotune_id: str, action: str, variant: str = "", reason: str = "") -> Response:
    found = auth.visitor(request)
    if found is None or not found.signed_in:
        return _to_login(request)
    if action not in ACTIONS:
        return _render(request, "message.html", found, 404, title="Not found", message="No such action.")
    if not found.can_act:
        return _render(request, "message.html", found, 403, title="Read-only key", message=READ_ONLY)
    try:
        if not could_be_autotune_id(autotune_id):
            raise NotFound(autotune_service.NOT_FOUND)
        autotune = autotune_service.get(auth.database(request), autotune_id)
    except NotFound:
        return _render(
            request, "message.html", found, 404, title="Not found", message=f"No autotune with id {autotune_id!r}."
        )
    chosen = autotune.definition.variant_by_ref(variant) if action == "decide" else None
    if action == "decide" and (chosen is None or not reason.strip()):
        problem = (
            "Choose a variant." if chosen is None else "Give a reason for the decision (it goes in the audit log)."
        )
        return _autotune_page(request, found, autotune_id, 400, error=problem)
    return _render(
        request,
        "confirm.html",
        found,
        autotune=autotune,
        action=action,
        variant=chosen,
        reason=reason.strip(),
        held_for_review=_reviews_required(request),
    )


def _reviews_required(request: Request) -> bool:
    return bool(request.app.state.settings.require_reviews)


def _problem_text(error: DomainError) -> str:
    if isinstance(error, InvalidInput):
        return "; ".join(f"{p.property}: {p.error_message}" for p in error.problems) or error.message
    return error.message


def refuse_action(request: Request, form: Any, found: Visitor | None, known: bool) -> Response | None:
    """The answer to a dashboard form post that may not act (signed out, expired form, read-only key,
    unknown action), or None when it may."""
    if found is None or not found.signed_in:
        return _render(request, "message.html", found, 401, title="Signed out", message="Sign in first.")
    if not auth.csrf_ok(found, form):
        return _render(request, "message.html", found, 403, title="Form expired", message=EXPIRED_FORM)
    if not found.can_act:
        return _render(request, "message.html", found, 403, title="Read-only key", message=READ_ONLY)
    if not known:
        return _render(request, "message.html", found, 404, title="Not found", message="No such action.")
    return None


@router.post("/autotunes/{autotune_id}/{action}")
async def act(request: Request, autotune_id: str, action: str) -> Response:
    form = await request.form()
    found = auth.visitor(request)
    refusal = refuse_action(request, form, found, action in ACTIONS)
    if refusal is not None or found is None:
        return refusal or _to_login(request)
    db, clock, actor = auth.database(request), auth.clock(request), found.actor()
    try:
        if not could_be_autotune_id(autotune_id):
            raise NotFound(autotune_service.NOT_FOUND)
        if action == "decide":
            reason = _field(form, "reason")
            if not reason or "\x00" in reason or len(reason) > MAX_REASON:
                problem = f"Give a reason for the decision (up to {MAX_REASON} characters, no NUL)."
                return _autotune_page(request, found, autotune_id, 400, error=problem)
            operation = change.make_decision(autotune_id, _field(form, "variant"), reason)
        else:
            operation = change.lifecycle(action, autotune_id)
        if _reviews_required(request):  # the same rule as the Console API: another key must approve
            reviews.submit(db, clock, actor, operation)
            return RedirectResponse("/reviews?done=submitted", status_code=303)
        change.apply(db, clock, actor, operation)
    except NotFound:
        return _render(
            request, "message.html", found, 404, title="Not found", message=f"No autotune with id {autotune_id!r}."
        )
    except DomainError as refused:
        return _autotune_page(request, found, autotune_id, 400, error=_problem_text(refused))
    return RedirectResponse(f"/autotunes/{quote(autotune_id, safe='')}?done={action}", status_code=303)
