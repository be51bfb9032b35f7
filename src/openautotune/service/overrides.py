"""User-id overrides: force listed units into a variant in every evaluation path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from openautotune.clock import Clock
from openautotune.domain.autotune import Actor, Autotune, UserIdOverride
from openautotune.domain.errors import FieldProblem, InvalidInput
from openautotune.domain.field_limits import override_problems
from openautotune.service.autotunes import get, mutate
from openautotune.store.database import Database

NO_CONDITIONAL_OVERRIDES = "This server has no gates or segments, so gate and segment overrides are not supported"


def _check_groups(autotune: Autotune, overrides: Sequence[UserIdOverride]) -> None:
    problems = [
        FieldProblem(f"userIDOverrides[{index}].groupID", f"No variant with id or name {o.group_id!r}")
        for index, o in enumerate(overrides)
        if autotune.definition.variant_by_ref(o.group_id) is None
    ]
    problems.extend(override_problems(overrides))
    if problems:
        raise InvalidInput(problems)


def reject_conditional(count: int) -> None:
    """Gate or segment overrides name things this server does not have."""
    if count:
        raise InvalidInput.field("overrides", NO_CONDITIONAL_OVERRIDES)


def read(db: Database, autotune_id: str) -> tuple[UserIdOverride, ...]:
    return get(db, autotune_id).user_id_overrides


def _scope(o: UserIdOverride) -> tuple[str, str | None, str | None]:
    return (o.group_id, o.environment, o.unit_type)


def _without_ids(existing: Sequence[UserIdOverride], ids: set[str], unit_type: str | None) -> list[UserIdOverride]:
    # A unit can be forced into one variant only: moving it removes it from its old group.
    kept = []
    for o in existing:
        trimmed = replace(o, ids=tuple(i for i in o.ids if i not in ids)) if o.unit_type == unit_type else o
        if trimmed.ids:
            kept.append(trimmed)
    return kept


def _merged(existing: Sequence[UserIdOverride], additions: Sequence[UserIdOverride]) -> tuple[UserIdOverride, ...]:
    result = list(existing)
    for addition in additions:
        result = _without_ids(result, set(addition.ids), addition.unit_type)
        for index, o in enumerate(result):
            if _scope(o) == _scope(addition):
                result[index] = replace(o, ids=tuple(dict.fromkeys(o.ids + addition.ids)))
                break
        else:
            result.append(replace(addition, ids=tuple(dict.fromkeys(addition.ids))))
    return tuple(result)


Build = Callable[[Autotune], tuple[UserIdOverride, ...]]


def _save(db: Database, clock: Clock, actor: Actor, autotune_id: str, build: Build, action: str) -> Autotune:
    def change(autotune: Autotune, now: int) -> Autotune:
        overrides = build(autotune)
        _check_groups(autotune, overrides)
        return replace(autotune, user_id_overrides=overrides, modified_ms=now, modifier=actor)

    return mutate(db, clock, actor, autotune_id, action, change)


def replace_all(
    db: Database, clock: Clock, actor: Actor, autotune_id: str, overrides: Sequence[UserIdOverride]
) -> Autotune:
    return _save(db, clock, actor, autotune_id, lambda a: _merged((), overrides), "overrides_replace")


def merge(db: Database, clock: Clock, actor: Actor, autotune_id: str, overrides: Sequence[UserIdOverride]) -> Autotune:
    return _save(db, clock, actor, autotune_id, lambda a: _merged(a.user_id_overrides, overrides), "overrides_merge")


def remove_unit(
    db: Database,
    clock: Clock,
    actor: Actor,
    autotune_id: str,
    unit_id: str,
    group_id: str,
    unit_type: str | None,
    environment: str | None,
) -> Autotune:
    """Idempotent: removing a unit that is not overridden changes nothing and succeeds."""

    def build(autotune: Autotune) -> tuple[UserIdOverride, ...]:
        kept = []
        for o in autotune.user_id_overrides:
            variant = autotune.definition.variant_by_ref(o.group_id)
            target = autotune.definition.variant_by_ref(group_id)
            matches = (
                variant is not None
                and variant == target
                and (unit_type is None or o.unit_type in (None, unit_type))
                and (environment is None or o.environment in (None, environment))
            )
            trimmed = replace(o, ids=tuple(i for i in o.ids if i != unit_id)) if matches else o
            if trimmed.ids:
                kept.append(trimmed)
        return tuple(kept)

    return _save(db, clock, actor, autotune_id, build, "overrides_remove")
