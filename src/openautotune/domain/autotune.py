"""Autotunes, their variants and state, as frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openautotune.domain import windows
from openautotune.domain.guardrails import Guardrail


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    FINISHED = "finished"


class Stage(StrEnum):
    """What traffic an autotune gets: the stage an update decided (engine.md, Lifecycle)."""

    DRAFT = "draft"
    EXPLORING = "exploring"
    EXPLOITING = "exploiting"
    FINISHED = "finished"


@dataclass(frozen=True)
class Variant:
    id: str
    name: str
    json: dict[str, Any]
    size: float | None = None


@dataclass(frozen=True)
class Definition:
    """Everything a team says about an autotune through the Console API."""

    name: str
    variants: tuple[Variant, ...]
    success_event: str
    exploration_window: str
    attribution_window: str
    winner_threshold: str
    description: str = ""
    id_type: str = "userID"
    success_event_value: str = ""
    attribution_window_unit: str | None = None
    exploration_window_rate: float | None = None
    longterm_exploration_allocation: float | None = None
    metadata_field: str | None = None
    higher_is_better: bool | None = None
    is_contextual: bool | None = None
    metric_source_id: str | None = None
    linked_experiment_name: str | None = None
    goal_rich_text: str | None = None
    optimization_parameter: str | None = None
    value_column: str | None = None
    feature_list: tuple[str, ...] | None = None
    estimator: str | None = None
    """Extension: `periodWeighted` (None: the default) or `pooled` (engine.md, "Estimator")."""
    winner_rule: str | None = None
    """Extension: `sequential` (None: the default) or `statsig` (engine.md, "Winner rule")."""
    holdout_percent: float | None = None
    """Extension: the share of units (0..50 %) served a fixed equal split for the whole run (engine.md, "Holdout")."""
    delayed_conversions: str | None = None
    """Extension: `expected` (None: the default) or `ignored` (engine.md, "Delayed conversions")."""
    guardrails: tuple[Guardrail, ...] = ()
    """Extension: events no variant may harm (engine.md, "Health")."""

    @property
    def exploration_ms(self) -> int:
        return windows.exploration_window_ms(self.exploration_window)

    @property
    def attribution_ms(self) -> int:
        return windows.attribution_window_ms(self.attribution_window, self.attribution_window_unit)

    @property
    def threshold(self) -> float:
        return windows.winner_threshold(self.winner_threshold)

    @property
    def optimizes_value(self) -> bool:
        """`value` optimization: explicit, or implied by a metadata field (engine.md, Units)."""
        if self.optimization_parameter is not None:
            return self.optimization_parameter == "value"
        return bool(self.metadata_field)

    @property
    def holdout_share(self) -> float:
        """The holdout's share of units, 0..0.5 (0 when unset)."""
        return (self.holdout_percent or 0.0) / 100.0

    @property
    def lower_is_better(self) -> bool:
        return self.higher_is_better is False

    @property
    def long_term_share(self) -> float:
        return self.longterm_exploration_allocation or 0.0

    def variant_by_ref(self, ref: str) -> Variant | None:
        """A variant named by its id or, failing that, its name."""
        for variant in self.variants:
            if variant.id == ref:
                return variant
        for variant in self.variants:
            if variant.name == ref:
                return variant
        return None


@dataclass(frozen=True)
class Actor:
    """Who made a change: a key id and the name recorded with it."""

    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class UserIdOverride:
    group_id: str
    ids: tuple[str, ...]
    environment: str | None = None
    unit_type: str | None = None


@dataclass(frozen=True)
class Autotune:
    id: str
    definition: Definition
    status: Status
    run: int
    salt: str
    started_at_ms: int | None
    winner_variant_id: str | None
    version: int
    allocation_version: int
    created_ms: int
    modified_ms: int
    creator: Actor
    modifier: Actor
    user_id_overrides: tuple[UserIdOverride, ...] = field(default=())

    @property
    def winner(self) -> Variant | None:
        if self.winner_variant_id is None:
            return None
        return self.definition.variant_by_ref(self.winner_variant_id)

    @property
    def is_started(self) -> bool:
        return self.status is not Status.DRAFT


@dataclass(frozen=True)
class Allocation:
    """The traffic split an update published: exact weights and the thresholds SDKs see."""

    autotune_id: str
    run: int
    version: int
    as_of_ms: int
    stage: Stage
    weights: tuple[float, ...]
    thresholds: tuple[int, ...]
