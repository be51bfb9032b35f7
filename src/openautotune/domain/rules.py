"""Rules every autotune definition obeys, and what may change once it has started."""

from __future__ import annotations

import math

from openautotune.domain import metric_sources, windows
from openautotune.domain.autotune import Definition
from openautotune.domain.errors import DomainError, FieldProblem, InvalidInput
from openautotune.domain.field_limits import definition_field_problems
from openautotune.domain.guardrails import guardrail_problems

OPTIMIZATION_PARAMETERS = ("occurrence", "value")
ESTIMATORS = ("periodWeighted", "pooled")
"""The engine's estimators (stats/estimators.py), the first the default."""
WINNER_RULES = ("sequential", "statsig")
"""The engine's winner rules (stats/winner_rule.py), the first the default."""
DELAYED_CONVERSIONS = ("expected", "ignored")
"""How immature units enter the allocation (engine/delayed.py), the first the default."""
MAX_HOLDOUT_PERCENT = 50.0
"""A larger holdout would be the main arm, not a comparison group (engine.md, "Holdout")."""
MAX_NAME_LENGTH = 100
MIN_SHARE = 0.001

# Fields that define an autotune's data: changing one after /start would mix two experiments.
FROZEN_FIELDS: dict[str, str] = {
    "id_type": "idType",
    "success_event": "successEvent",
    "success_event_value": "successEventValue",
    "attribution_window": "attributionWindow",
    "attribution_window_unit": "attributionWindowUnit",
    "metadata_field": "metadataField",
    "optimization_parameter": "optimizationParameter",
    "is_contextual": "isContextual",
    "feature_list": "featureList",
    # Who is held out is decided by the share: changing it mid-run would move units between arms.
    "holdout_percent": "holdoutPercent",
}


def _check(problems: list[FieldProblem], property: str, check: object) -> None:
    try:
        if callable(check):
            check()
    except InvalidInput as invalid:
        problems.extend(invalid.problems)
    except DomainError as error:
        problems.append(FieldProblem(property, error.message))


def definition_problems(definition: Definition) -> list[FieldProblem]:
    """Every broken rule of a definition, each with the field path a client would recognise."""
    problems: list[FieldProblem] = []
    name = definition.name.strip()
    if not name or len(definition.name) > MAX_NAME_LENGTH:
        problems.append(FieldProblem("name", f"must be 1 to {MAX_NAME_LENGTH} characters"))
    if not definition.success_event.strip():
        problems.append(FieldProblem("successEvent", "must not be empty"))
    if not definition.id_type.strip():
        problems.append(FieldProblem("idType", "must not be empty"))
    problems.extend(_variant_problems(definition))
    problems.extend(definition_field_problems(definition))
    problems.extend(metric_sources.definition_problems(definition))
    problems.extend(guardrail_problems(definition.guardrails))
    _check(problems, "explorationWindow", lambda: definition.exploration_ms)
    _check(problems, "attributionWindow", lambda: definition.attribution_ms)
    _check(problems, "winnerThreshold", lambda: definition.threshold)
    for attr, prop in (
        ("exploration_window_rate", "explorationWindowRate"),
        ("longterm_exploration_allocation", "longtermExplorationAllocation"),
    ):
        share = getattr(definition, attr)
        if share is not None and not (MIN_SHARE <= share <= 1.0):
            problems.append(FieldProblem(prop, f"must be between {MIN_SHARE} and 1"))
    for value, prop, allowed in (
        (definition.optimization_parameter, "optimizationParameter", OPTIMIZATION_PARAMETERS),
        (definition.estimator, "estimator", ESTIMATORS),
        (definition.winner_rule, "winnerRule", WINNER_RULES),
        (definition.delayed_conversions, "delayedConversions", DELAYED_CONVERSIONS),
    ):
        if value is not None and value not in allowed:
            problems.append(FieldProblem(prop, f"must be one of {', '.join(allowed)}"))
    problems.extend(_holdout_problems(definition))
    return problems


def _holdout_problems(definition: Definition) -> list[FieldProblem]:
    share = definition.holdout_percent
    if share is None:
        return []
    if not (math.isfinite(share) and 0.0 <= share <= MAX_HOLDOUT_PERCENT):
        return [FieldProblem("holdoutPercent", f"must be a number from 0 to {MAX_HOLDOUT_PERCENT:g}")]
    if share > 0 and definition.is_contextual:
        # A contextual autotune is served through cmab_configs, which have no holdout rule.
        return [FieldProblem("holdoutPercent", "a contextual autotune cannot have a holdout")]
    return []


def _variant_problems(definition: Definition) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    variants = definition.variants
    if len(variants) < 2:
        problems.append(FieldProblem("variants", "An autotune needs at least 2 variants"))
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        if not variant.name.strip():
            problems.append(FieldProblem(f"variants[{index}].name", "must not be empty"))
        elif variant.name in seen:
            problems.append(FieldProblem(f"variants[{index}].name", f"Variant name {variant.name!r} is used twice"))
        seen.add(variant.name)
        if variant.size is not None and not (math.isfinite(variant.size) and 0 <= variant.size <= 100):
            problems.append(FieldProblem(f"variants[{index}].size", "must be between 0 and 100"))
    sizes = [variant.size for variant in variants]
    if variants and all(size is not None for size in sizes):
        total = sum(size for size in sizes if size is not None)
        if abs(total - 100) > 1e-9:
            problems.append(FieldProblem("variants", f"Variant sizes must add up to 100, not {total:g}"))
    return problems


def validate(definition: Definition) -> None:
    problems = definition_problems(definition)
    if problems:
        raise InvalidInput(problems)


def frozen_changes(old: Definition, new: Definition) -> list[FieldProblem]:
    """Changes to fields that are frozen while an autotune has started."""
    message = "cannot change after the autotune has started; reset it first"
    problems = [
        FieldProblem(prop, f"{prop} {message}")
        for attr, prop in FROZEN_FIELDS.items()
        if getattr(old, attr) != getattr(new, attr)
    ]
    if [v.name for v in old.variants] != [v.name for v in new.variants]:
        problems.append(FieldProblem("variants", f"variant count and names {message}"))
    if [g.key for g in old.guardrails] != [g.key for g in new.guardrails]:
        # Their data is summed update by update; the allowed harm and direction may still change.
        problems.append(FieldProblem("guardrails", f"guardrail events and values {message}"))
    return problems


__all__ = ["definition_problems", "frozen_changes", "validate", "windows"]
