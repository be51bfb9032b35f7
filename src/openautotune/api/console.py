"""Statsig's Console API for autotunes: `/console/v1/autotunes` (console-api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from openautotune.api import console_fields as wire
from openautotune.api.auth import console_actor
from openautotune.api.console_models import (
    AutotuneAnswer,
    AutotuneCreate,
    AutotuneFullUpdate,
    AutotuneListAnswer,
    AutotunePartialUpdate,
    DecisionIn,
    ErrorBody,
    MessageAnswer,
    OverridesAnswer,
    OverridesIn,
)
from openautotune.api.console_router import Reader, Writer, console_router
from openautotune.api.console_router import json_response as _json
from openautotune.api.console_router import request_clock as _clock
from openautotune.api.console_router import request_db as _db
from openautotune.api.reviews import HELD, held_for_review
from openautotune.domain.autotune import UserIdOverride
from openautotune.domain.errors import InvalidInput
from openautotune.service import autotunes, overrides
from openautotune.service import review_operations as change

BASE = "/console/v1/autotunes"
# Beyond this a page is out of range (a 400): the offset (page - 1) * limit must fit the databases'
# 64-bit OFFSET, and no server holds a million pages of autotunes.
MAX_PAGE = 1_000_000
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 429)}


router = console_router(BASE, "Autotunes", ERRORS)


def _answer(message: str, autotune: Any, status: int = 200) -> Response:
    return _json({"message": message, "data": wire.autotune_json(autotune)}, status)


def _page_link(page: int, limit: int) -> str:
    return f"{BASE}?page={page}&limit={limit}"


@router.get("", response_model=AutotuneListAnswer, summary="List Autotunes")
def list_autotunes(
    request: Request,
    _key: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    items, total = autotunes.page(_db(request), limit, page)
    has_next = page * limit < total
    return _json(
        {
            "message": "Autotune Experiments listed successfully.",
            "data": [wire.autotune_json(a) for a in items],
            "pagination": {
                "itemsPerPage": limit,
                "pageNumber": page,
                "nextPage": _page_link(page + 1, limit) if has_next else None,
                "previousPage": _page_link(page - 1, limit) if page > 1 else None,
                "totalItems": total,
                "all": BASE,
            },
        }
    )


@router.post("", status_code=201, response_model=AutotuneAnswer, summary="Create Autotune")
def create_autotune(request: Request, key: Writer, body: AutotuneCreate) -> Response:
    wire.echoes(body)
    fields = wire.definition_fields(body, only_present=False)
    fields["name"] = body.name
    autotune = autotunes.create(_db(request), _clock(request), console_actor(key), fields)
    return _answer("Autotune Experiments created successfully.", autotune, 201)


@router.get("/{id}", response_model=AutotuneAnswer, summary="Read Autotune")
def read_autotune(request: Request, _key: Reader, id: str) -> Response:
    return _answer("Autotune Experiment read successfully.", autotunes.get(_db(request), id))


@router.post("/{id}", response_model=AutotuneAnswer, summary="Fully Update Autotune", responses=HELD)
def fully_update_autotune(request: Request, key: Writer, id: str, body: AutotuneFullUpdate) -> Response:
    fields, echoes = wire.definition_fields(body, only_present=False), wire.echoes(body)
    if (held := held_for_review(request, key, change.update(id, fields, echoes, full=True))) is not None:
        return held
    autotune = autotunes.full_update(_db(request), _clock(request), console_actor(key), id, fields, echoes)
    # Statsig's own wording for this endpoint, kept for compatibility.
    return _answer("Autotune Experiment read successfully.", autotune)


@router.patch("/{id}", response_model=AutotuneAnswer, summary="Partially Update Autotune", responses=HELD)
def partially_update_autotune(request: Request, key: Writer, id: str, body: AutotunePartialUpdate) -> Response:
    fields, echoes = wire.definition_fields(body, only_present=True), wire.echoes(body)
    if (held := held_for_review(request, key, change.update(id, fields, echoes, full=False))) is not None:
        return held
    autotune = autotunes.partial_update(_db(request), _clock(request), console_actor(key), id, fields, echoes)
    return _answer("Autotune Experiment updated successfully.", autotune)


@router.delete("/{id}", response_model=MessageAnswer, summary="Delete Autotune", responses=HELD)
def delete_autotune(request: Request, key: Writer, id: str) -> Response:
    if (held := held_for_review(request, key, change.lifecycle("delete", id))) is not None:
        return held
    autotunes.delete(_db(request), _clock(request), console_actor(key), id)
    return _json({"message": "Autotune Experiment deleted successfully."})


@router.put("/{id}/start", response_model=MessageAnswer, summary="Start Autotune", responses=HELD)
def start_autotune(request: Request, key: Writer, id: str) -> Response:
    if (held := held_for_review(request, key, change.lifecycle("start", id))) is not None:
        return held
    autotunes.start(_db(request), _clock(request), console_actor(key), id)
    return _json({"message": "Autotune Experiment successfully started."})


@router.put("/{id}/make_decision", response_model=MessageAnswer, summary="Make Decision", responses=HELD)
def make_decision(request: Request, key: Writer, id: str, body: DecisionIn) -> Response:
    variant_ref = body.id or body.groupID
    if variant_ref is None:
        raise InvalidInput.field("id", "Field required: the id or name of the winning variant")
    if (held := held_for_review(request, key, change.make_decision(id, variant_ref, body.decisionReason))) is not None:
        return held
    autotunes.make_decision(_db(request), _clock(request), console_actor(key), id, variant_ref, body.decisionReason)
    return _json({"message": "Decision made for Autotune Experiment."})


@router.put("/{id}/reset", response_model=MessageAnswer, summary="Reset Autotune", responses=HELD)
def reset_autotune(request: Request, key: Writer, id: str) -> Response:
    if (held := held_for_review(request, key, change.lifecycle("reset", id))) is not None:
        return held
    autotunes.reset(_db(request), _clock(request), console_actor(key), id)
    return _json({"message": "Autotune Experiment successfully restarted."})


def _overrides_answer(message: str, values: tuple[UserIdOverride, ...]) -> Response:
    return _json({"message": message, "data": wire.overrides_json(values)})


def _user_overrides(body: OverridesIn) -> list[UserIdOverride]:
    overrides.reject_conditional(len(body.overrides))
    return [
        UserIdOverride(group_id=o.groupID, ids=tuple(o.ids), environment=o.environment, unit_type=o.unitType)
        for o in body.userIDOverrides
    ]


@router.get("/{id}/overrides", response_model=OverridesAnswer, summary="Get Autotune Overrides")
def get_overrides(request: Request, _key: Reader, id: str) -> Response:
    return _overrides_answer("Autotune overrides read successfully.", overrides.read(_db(request), id))


@router.post("/{id}/overrides", response_model=OverridesAnswer, summary="Update Autotune Overrides", responses=HELD)
def replace_overrides(request: Request, key: Writer, id: str, body: OverridesIn) -> Response:
    values = _user_overrides(body)
    if (held := held_for_review(request, key, change.set_overrides(id, values, merge=False))) is not None:
        return held
    autotune = overrides.replace_all(_db(request), _clock(request), console_actor(key), id, values)
    return _overrides_answer("Autotune overrides updated successfully.", autotune.user_id_overrides)


@router.patch(
    "/{id}/overrides", response_model=OverridesAnswer, summary="Partially Update Autotune Overrides", responses=HELD
)
def merge_overrides(request: Request, key: Writer, id: str, body: OverridesIn) -> Response:
    values = _user_overrides(body)
    if (held := held_for_review(request, key, change.set_overrides(id, values, merge=True))) is not None:
        return held
    autotune = overrides.merge(_db(request), _clock(request), console_actor(key), id, values)
    return _overrides_answer("Autotune overrides updated successfully.", autotune.user_id_overrides)


@router.delete(
    "/{id}/overrides/userID/{userID}", response_model=OverridesAnswer, summary="Delete User ID Override", responses=HELD
)
def delete_user_override(
    request: Request,
    key: Writer,
    id: str,
    userID: str,
    groupID: Annotated[str, Query(min_length=1)],
    unitType: str | None = None,
    environment: str | None = None,
) -> Response:
    operation = change.remove_override(id, userID, groupID, unitType, environment)
    if (held := held_for_review(request, key, operation)) is not None:
        return held
    autotune = overrides.remove_unit(
        _db(request), _clock(request), console_actor(key), id, userID, groupID, unitType, environment
    )
    return _overrides_answer("Autotune override deleted successfully.", autotune.user_id_overrides)


@router.delete(
    "/{id}/overrides/conditional/{type}/{name}", response_model=OverridesAnswer, summary="Delete Conditional Override"
)
def delete_conditional_override(
    request: Request,
    _key: Writer,
    id: str,
    type: str,
    name: str,
    groupID: Annotated[str, Query(min_length=1)],
    environment: str | None = None,
) -> Response:
    # This server stores no gate or segment overrides, so there is never one to remove: idempotent.
    autotune = autotunes.get(_db(request), id)
    return _overrides_answer("Autotune override deleted successfully.", autotune.user_id_overrides)
