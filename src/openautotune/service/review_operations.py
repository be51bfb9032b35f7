"""A Console API change as plain JSON, so it can wait in a review and be applied later, unchanged.

`encode_*` build the stored form from what the API parsed; `apply` replays it through the very
service functions that apply changes at once, so a reviewed change is validated and audited the
same way as a direct one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from openautotune.clock import Clock
from openautotune.domain.autotune import Actor, UserIdOverride
from openautotune.domain.errors import InvalidInput
from openautotune.service import autotunes, overrides
from openautotune.service.autotunes import VariantInput
from openautotune.store.database import Database

Operation = dict[str, Any]
ACTIONS = (
    "update",
    "partial_update",
    "delete",
    "start",
    "make_decision",
    "reset",
    "overrides_replace",
    "overrides_merge",
    "overrides_remove",
)


def _fields_json(fields: Mapping[str, Any]) -> dict[str, Any]:
    encoded = dict(fields)
    if encoded.get("variants") is not None:
        encoded["variants"] = [asdict(v) for v in encoded["variants"]]
    if encoded.get("feature_list") is not None:
        encoded["feature_list"] = list(encoded["feature_list"])
    return encoded


def _fields(encoded: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(encoded)
    if fields.get("variants") is not None:
        fields["variants"] = [VariantInput(**v) for v in fields["variants"]]
    return fields


def _overrides_json(values: Sequence[UserIdOverride]) -> list[dict[str, Any]]:
    return [{**asdict(o), "ids": list(o.ids)} for o in values]


def _overrides(encoded: Sequence[Mapping[str, Any]]) -> list[UserIdOverride]:
    return [UserIdOverride(**{**o, "ids": tuple(o["ids"])}) for o in encoded]


def update(autotune_id: str, fields: Mapping[str, Any], echoes: Mapping[str, Any], *, full: bool) -> Operation:
    action = "update" if full else "partial_update"
    return {"action": action, "autotuneID": autotune_id, "fields": _fields_json(fields), "echoes": dict(echoes)}


def lifecycle(action: str, autotune_id: str) -> Operation:
    """`delete`, `start` or `reset`: the action and the autotune say it all."""
    return {"action": action, "autotuneID": autotune_id}


def make_decision(autotune_id: str, variant_ref: str, reason: str) -> Operation:
    return {"action": "make_decision", "autotuneID": autotune_id, "variant": variant_ref, "reason": reason}


def set_overrides(autotune_id: str, values: Sequence[UserIdOverride], *, merge: bool) -> Operation:
    action = "overrides_merge" if merge else "overrides_replace"
    return {"action": action, "autotuneID": autotune_id, "overrides": _overrides_json(values)}


def remove_override(
    autotune_id: str, unit_id: str, group_id: str, unit_type: str | None, environment: str | None
) -> Operation:
    return {
        "action": "overrides_remove",
        "autotuneID": autotune_id,
        "unitID": unit_id,
        "groupID": group_id,
        "unitType": unit_type,
        "environment": environment,
    }


def apply(db: Database, clock: Clock, actor: Actor, op: Mapping[str, Any]) -> None:
    """Apply a stored change as `actor` (its author)."""
    action, autotune_id = op["action"], op["autotuneID"]
    if action == "update":
        autotunes.full_update(db, clock, actor, autotune_id, _fields(op["fields"]), op["echoes"])
    elif action == "partial_update":
        autotunes.partial_update(db, clock, actor, autotune_id, _fields(op["fields"]), op["echoes"])
    elif action == "delete":
        autotunes.delete(db, clock, actor, autotune_id)
    elif action == "start":
        autotunes.start(db, clock, actor, autotune_id)
    elif action == "reset":
        autotunes.reset(db, clock, actor, autotune_id)
    elif action == "make_decision":
        autotunes.make_decision(db, clock, actor, autotune_id, op["variant"], op["reason"])
    elif action == "overrides_replace":
        overrides.replace_all(db, clock, actor, autotune_id, _overrides(op["overrides"]))
    elif action == "overrides_merge":
        overrides.merge(db, clock, actor, autotune_id, _overrides(op["overrides"]))
    elif action == "overrides_remove":
        overrides.remove_unit(
            db, clock, actor, autotune_id, op["unitID"], op["groupID"], op["unitType"], op["environment"]
        )
    else:  # a row written by another version, or by hand
        raise InvalidInput.field("action", f"Unknown change {action!r}")
