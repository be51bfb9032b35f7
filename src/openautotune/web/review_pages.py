"""Dashboard page of pending reviews (console-api.md, "Reviews"), with Approve and Reject buttons.

The same rules as the Console API hold, because the same service functions decide: the author's own
key cannot decide, a read-only key sees the list without buttons, a stale review is refused.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from openautotune.domain.errors import DomainError, Forbidden, NotFound
from openautotune.service import reviews
from openautotune.web import auth
from openautotune.web.pages import _field, _render, _to_login, refuse_action

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
DONE = {"approve": "Approved: the change is applied.", "reject": "Rejected: nothing changed."}
SUBMITTED = "Submitted for review: another console key must approve it before it applies."


def _change_text(operation: dict[str, object]) -> str:
    hidden = ("action", "autotuneID", "authorName")
    shown = {k: v for k, v in operation.items() if k not in hidden and v not in ({}, None)}
    return orjson.dumps(shown, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() if shown else ""


def _reviews_page(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    found = auth.visitor(request)
    assert found is not None and found.key is not None
    pending, total = reviews.page(auth.database(request), reviews.PENDING, PAGE_SIZE, 1)
    rows = [
        {
            "review": review,
            "change": _change_text(review.operation),
            "own": review.author_key_id == found.key.id,
        }
        for review in pending
    ]
    done = request.query_params.get("done") or ""
    notice = SUBMITTED if done == "submitted" else DONE.get(done)
    return _render(request, "reviews.html", found, status_code, rows=rows, total=total, notice=notice, error=error)


@router.get("/reviews")
def reviews_list(request: Request) -> Response:
    found = auth.visitor(request)
    if found is None or not found.signed_in:
        return _to_login(request)
    return _reviews_page(request)


@router.post("/reviews/{review_id}/{decision}")
async def decide(request: Request, review_id: str, decision: str) -> Response:
    form = await request.form()
    found = auth.visitor(request)
    refusal = refuse_action(request, form, found, decision in DONE)
    if refusal is not None or found is None:
        return refusal or _to_login(request)
    comment = _field(form, "comment")[: reviews.MAX_COMMENT].replace("\x00", "") or None
    decide_with = reviews.approve if decision == "approve" else reviews.reject
    try:
        decide_with(auth.database(request), auth.clock(request), found.actor(), review_id, comment)
    except NotFound:
        return _reviews_page(request, 404, error="That review does not exist (any more).")
    except Forbidden as refused:
        return _reviews_page(request, 403, error=refused.message)
    except DomainError as refused:  # stale or already decided (409 in the API), or a refused change
        return _reviews_page(request, 409, error=refused.message)
    return RedirectResponse(f"/reviews?done={quote(decision)}", status_code=303)
