"""Reviews of Console API changes: `/console/v1/reviews` and `/console/v1/settings/reviews`
(console-api.md, "Reviews"), and `held_for_review`, which the autotune routes call first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from openautotune.api.auth import console_actor
from openautotune.api.console_models import ErrorBody
from openautotune.api.console_router import Reader, Writer, console_router
from openautotune.api.console_router import json_response as _json
from openautotune.api.console_router import request_clock as _clock
from openautotune.api.console_router import request_db as _db
from openautotune.api.errors import ApiError
from openautotune.api.review_models import (
    ReviewAnswer,
    ReviewDecisionIn,
    ReviewListAnswer,
    ReviewSettingsAnswer,
    ReviewSubmittedAnswer,
)
from openautotune.domain.keys import KeyRecord
from openautotune.service import reviews
from openautotune.service.review_operations import Operation
from openautotune.service.reviews import StoredReview
from openautotune.settings import Settings

BASE = "/console/v1/reviews"
REVIEW_HEADER = "x-respect-review-settings"
SUBMITTED = "Change submitted for review."
MAX_PAGE = 1_000_000
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 429)}
# The answer a held mutation gets, documented on each autotune route that may be held.
HELD: dict[int | str, dict[str, Any]] = {202: {"model": ReviewSubmittedAnswer, "description": SUBMITTED}}

router = console_router("/console/v1", "Reviews", ERRORS)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def held_for_review(request: Request, key: KeyRecord, operation: Operation) -> Response | None:
    """With reviews required and the caller asking for them, store the change and answer 202; else
    None, and the route applies the change at once (Statsig's behaviour without the header)."""
    if not _settings(request).require_reviews:
        return None
    if request.headers.get(REVIEW_HEADER, "").strip().lower() != "true":
        return None
    review = reviews.submit(_db(request), _clock(request), console_actor(key), operation)
    return _json({"message": SUBMITTED, "data": {"reviewID": review.id, "status": review.status}}, 202)


def review_json(review: StoredReview) -> dict[str, Any]:
    change = {k: v for k, v in review.operation.items() if k not in ("action", "autotuneID", "authorName")}
    return {
        "id": review.id,
        "autotuneID": review.autotune_id,
        "action": review.action,
        "status": review.status,
        "change": change,
        "authorID": review.author_key_id,
        "createdTime": review.created_ms,
        "reviewerID": review.reviewer_key_id,
        "decidedTime": review.decided_ms,
        "comment": review.comment,
    }


def _page_link(page: int, limit: int, status: str | None) -> str:
    return f"{BASE}?page={page}&limit={limit}" + (f"&status={status}" if status else "")


@router.get("/settings/reviews", response_model=ReviewSettingsAnswer, summary="Read Review Settings")
def review_settings(request: Request, _key: Reader) -> Response:
    data = {"requireReviews": _settings(request).require_reviews}
    return _json({"message": "Review settings read successfully.", "data": data})


@router.get("/reviews", response_model=ReviewListAnswer, summary="List Reviews")
def list_reviews(
    request: Request,
    _key: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    status: Annotated[str | None, Query(json_schema_extra={"enum": list(reviews.STATUSES)})] = None,
) -> Response:
    if status is not None and status not in reviews.STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(reviews.STATUSES)}")
    items, total = reviews.page(_db(request), status, limit, page)
    return _json(
        {
            "message": "Reviews listed successfully.",
            "data": [review_json(r) for r in items],
            "pagination": {
                "itemsPerPage": limit,
                "pageNumber": page,
                "nextPage": _page_link(page + 1, limit, status) if page * limit < total else None,
                "previousPage": _page_link(page - 1, limit, status) if page > 1 else None,
                "totalItems": total,
                "all": BASE,
            },
        }
    )


@router.get("/reviews/{id}", response_model=ReviewAnswer, summary="Read Review")
def read_review(request: Request, _key: Reader, id: str) -> Response:
    return _json({"message": "Review read successfully.", "data": review_json(reviews.get(_db(request), id))})


def _comment(body: ReviewDecisionIn | None) -> str | None:
    if body is None or body.comment is None:
        return None
    if "\x00" in body.comment:
        raise ApiError(400, "comment must not contain NUL characters")
    return body.comment


def _decided(request: Request, decide: Any, key: KeyRecord, id: str, body: ReviewDecisionIn | None) -> StoredReview:
    try:
        review: StoredReview = decide(_db(request), _clock(request), console_actor(key), id, _comment(body))
    except reviews.StaleReview as stale:
        raise ApiError(409, stale.message) from None
    return review


@router.put("/reviews/{id}/approve", response_model=ReviewAnswer, summary="Approve Review")
def approve_review(request: Request, key: Writer, id: str, body: ReviewDecisionIn | None = None) -> Response:
    review = _decided(request, reviews.approve, key, id, body)
    return _json({"message": "Review approved: the change is applied.", "data": review_json(review)})


@router.put("/reviews/{id}/reject", response_model=ReviewAnswer, summary="Reject Review")
def reject_review(request: Request, key: Writer, id: str, body: ReviewDecisionIn | None = None) -> Response:
    review = _decided(request, reviews.reject, key, id, body)
    return _json({"message": "Review rejected: nothing changed.", "data": review_json(review)})
