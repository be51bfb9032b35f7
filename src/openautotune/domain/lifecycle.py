"""Lifecycle transitions: draft -> running -> finished, and reset to a new run (engine.md)."""

from __future__ import annotations

from dataclasses import replace

from openautotune.domain.autotune import Actor, Autotune, Status
from openautotune.domain.errors import Conflict, InvalidInput

ALREADY_STARTED = "Autotune experiment has already started"
ALREADY_FINISHED = "Autotune experiment has already finished"
NOT_STARTED = "Autotune experiment has not yet started"


def start(autotune: Autotune, now_ms: int, actor: Actor) -> Autotune:
    if autotune.status is Status.RUNNING:
        raise Conflict(ALREADY_STARTED)
    if autotune.status is Status.FINISHED:
        raise Conflict(ALREADY_FINISHED)
    return replace(
        autotune,
        status=Status.RUNNING,
        started_at_ms=now_ms,
        allocation_version=autotune.allocation_version + 1,
        modified_ms=now_ms,
        modifier=actor,
    )


def decide(autotune: Autotune, variant_ref: str, now_ms: int, actor: Actor) -> Autotune:
    """Declare `variant_ref` (id or name) the winner: the autotune is finished."""
    if autotune.status is Status.DRAFT:
        raise Conflict(NOT_STARTED)
    if autotune.status is Status.FINISHED:
        raise Conflict(ALREADY_FINISHED)
    variant = autotune.definition.variant_by_ref(variant_ref)
    if variant is None:
        raise InvalidInput.field("id", f"No variant with id or name {variant_ref!r}")
    return replace(
        autotune,
        status=Status.FINISHED,
        winner_variant_id=variant.id,
        allocation_version=autotune.allocation_version + 1,
        modified_ms=now_ms,
        modifier=actor,
    )


def reset(autotune: Autotune, now_ms: int, new_salt: str, actor: Actor) -> Autotune:
    """Start a new run: new salt and start time; earlier runs' units are never analysed again."""
    if autotune.status is Status.DRAFT:
        raise Conflict(NOT_STARTED)
    return replace(
        autotune,
        status=Status.RUNNING,
        run=autotune.run + 1,
        salt=new_salt,
        started_at_ms=now_ms,
        winner_variant_id=None,
        allocation_version=autotune.allocation_version + 1,
        modified_ms=now_ms,
        modifier=actor,
    )
