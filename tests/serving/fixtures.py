"""Autotunes as domain values with fixed ids and salts, for golden files and evaluator tests."""

from __future__ import annotations

from openautotune.domain.allocation import cumulative_thresholds, exploration_weights, winner_weights
from openautotune.domain.autotune import (
    Actor,
    Allocation,
    Autotune,
    Definition,
    Stage,
    Status,
    UserIdOverride,
    Variant,
)

T0 = 1_767_225_600_000
ACTOR = Actor(id="key1", name="CONSOLE API")
RED = Variant(id="v_red", name="red", json={"color": "red"}, size=20)
GREEN = Variant(id="v_green", name="green", json={"color": "green", "shade": 2}, size=30)
BLUE = Variant(id="v_blue", name="blue", json={}, size=50)


def definition(name: str, variants: tuple[Variant, ...] = (RED, GREEN, BLUE), id_type: str = "userID") -> Definition:
    return Definition(
        name=name,
        variants=variants,
        success_event="click",
        exploration_window="24hr",
        attribution_window="1hr",
        winner_threshold="95%",
        id_type=id_type,
    )


def autotune(
    name: str,
    status: Status,
    *,
    allocation_version: int = 1,
    winner: str | None = None,
    overrides: tuple[UserIdOverride, ...] = (),
    id_type: str = "userID",
) -> Autotune:
    return Autotune(
        id=name,
        definition=definition(name, id_type=id_type),
        status=status,
        run=1,
        salt=f"salt-{name}",
        started_at_ms=None if status is Status.DRAFT else T0,
        winner_variant_id=winner,
        version=1,
        allocation_version=0 if status is Status.DRAFT else allocation_version,
        created_ms=T0,
        modified_ms=T0,
        creator=ACTOR,
        modifier=ACTOR,
        user_id_overrides=overrides,
    )


def allocation(subject: Autotune, weights: tuple[float, ...], stage: Stage) -> Allocation:
    return Allocation(
        autotune_id=subject.id,
        run=subject.run,
        version=subject.allocation_version,
        as_of_ms=T0,
        stage=stage,
        weights=weights,
        thresholds=cumulative_thresholds(weights),
    )


def golden_pairs() -> list[tuple[Autotune, Allocation | None]]:
    """A draft, a running autotune with sizes, one after an update, a finished one, and overrides."""
    draft = autotune("draft_one", Status.DRAFT)
    sized = autotune("sized_one", Status.RUNNING)
    updated = autotune("updated_one", Status.RUNNING, allocation_version=3, id_type="companyID")
    finished = autotune("finished_one", Status.FINISHED, allocation_version=2, winner=GREEN.id)
    overridden = autotune(
        "overridden_one",
        Status.RUNNING,
        overrides=(
            UserIdOverride(group_id="blue", ids=("Alice", "bob")),
            UserIdOverride(group_id=RED.id, ids=("carol",), environment="production", unit_type="stableID"),
        ),
    )
    return [
        (draft, None),
        (sized, allocation(sized, exploration_weights(sized.definition), Stage.EXPLORING)),
        (updated, allocation(updated, (0.125, 0.6, 0.275), Stage.EXPLOITING)),
        (finished, allocation(finished, winner_weights(finished.definition, GREEN.id), Stage.FINISHED)),
        (overridden, allocation(overridden, (1 / 3, 1 / 3, 1 / 3), Stage.EXPLORING)),
    ]
