"""Translation between Console API bodies and domain values, in both directions."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any

from pydantic import BaseModel

from openautotune.domain.autotune import Autotune, Definition, UserIdOverride
from openautotune.domain.errors import FieldProblem, InvalidInput
from openautotune.domain.guardrails import Guardrail
from openautotune.service.autotunes import VariantInput

# Console name -> Definition attribute, for every field a body may set.
DEFINITION_FIELDS: dict[str, str] = {
    "name": "name",
    "description": "description",
    "idType": "id_type",
    "variants": "variants",
    "successEvent": "success_event",
    "successEventValue": "success_event_value",
    "explorationWindow": "exploration_window",
    "attributionWindow": "attribution_window",
    "attributionWindowUnit": "attribution_window_unit",
    "explorationWindowRate": "exploration_window_rate",
    "longtermExplorationAllocation": "longterm_exploration_allocation",
    "winnerThreshold": "winner_threshold",
    "metadataField": "metadata_field",
    "higherIsBetter": "higher_is_better",
    "isContextual": "is_contextual",
    "metricSourceID": "metric_source_id",
    "linkedExperimentName": "linked_experiment_name",
    "goalRichText": "goal_rich_text",
    "optimizationParameter": "optimization_parameter",
    "valueColumn": "value_column",
    "featureList": "feature_list",
    "estimator": "estimator",
    "winnerRule": "winner_rule",
    "holdoutPercent": "holdout_percent",
    "delayedConversions": "delayed_conversions",
    "guardrails": "guardrails",
}
_DEFAULTS = {f.name: f.default for f in dataclass_fields(Definition)}
# Shown on every answer even when unset ("" rather than absent), as Statsig does.
ALWAYS_SHOWN = {
    "name",
    "description",
    "idType",
    "variants",
    "successEvent",
    "successEventValue",
    "explorationWindow",
    "attributionWindow",
    "winnerThreshold",
}
FIXED_ECHOES: dict[str, Any] = {"tags": [], "targetApps": [], "holdoutIDs": [], "team": None, "teamID": None}


def definition_fields(body: BaseModel, *, only_present: bool) -> dict[str, Any]:
    """Domain attribute -> value for the fields a body sets (all of them unless `only_present`)."""
    present = body.model_fields_set
    values: dict[str, Any] = {}
    for console_name, attr in DEFINITION_FIELDS.items():
        if console_name == "name" or (only_present and console_name not in present):
            continue
        value = getattr(body, console_name)
        if console_name == "variants" and value is not None:
            value = [VariantInput(name=v.name, json=v.json_, size=v.size) for v in value]
        elif console_name == "guardrails" and value is not None:
            value = tuple(
                Guardrail(g.event, g.maxRelativeHarm, higher_is_better=g.higherIsBetter, value=g.value) for g in value
            )
        if value is None and _DEFAULTS.get(attr) is not None:
            value = _DEFAULTS[attr]  # an explicit null means "back to the default"
        values[attr] = value
    return values


def echoes(body: BaseModel) -> dict[str, Any]:
    """Read-only fields the client sent, for the service to check against the stored autotune."""
    present = body.model_fields_set
    problems = [
        FieldProblem(name, f"{name} is managed by the server and must be {fixed!r} here")
        for name, fixed in FIXED_ECHOES.items()
        if name in present and getattr(body, name) != fixed
    ]
    if problems:
        raise InvalidInput(problems)
    return {name: getattr(body, name) for name in ("id", "isStarted", "name") if name in present}


def autotune_json(autotune: Autotune) -> dict[str, Any]:
    definition = autotune.definition
    data: dict[str, Any] = {"id": autotune.id}
    for console_name, attr in DEFINITION_FIELDS.items():
        value = getattr(definition, attr)
        if console_name == "variants":
            value = [
                {"id": v.id, "name": v.name, "json": v.json, **({"size": v.size} if v.size is not None else {})}
                for v in definition.variants
            ]
        elif console_name == "featureList" and value is not None:
            value = list(value)
        elif console_name == "guardrails":
            value = [
                {
                    "event": g.event,
                    "value": g.value,
                    "higherIsBetter": g.higher_is_better,
                    "maxRelativeHarm": g.max_relative_harm,
                }
                for g in definition.guardrails
            ] or None
        if value is not None or console_name in ALWAYS_SHOWN:
            data[console_name] = value
    winner = autotune.winner
    data.update(
        isStarted=autotune.is_started,
        winner={"id": winner.id, "name": winner.name} if winner else None,
        creatorID=autotune.creator.id,
        creatorName=autotune.creator.name,
        creatorEmail=autotune.creator.email,
        createdTime=autotune.created_ms,
        lastModifierID=autotune.modifier.id,
        lastModifierName=autotune.modifier.name,
        lastModifierEmail=autotune.modifier.email,
        lastModifiedTime=autotune.modified_ms,
        version=autotune.version,
        **FIXED_ECHOES,
    )
    return data


def overrides_json(overrides: tuple[UserIdOverride, ...]) -> dict[str, Any]:
    return {
        "overrides": [],
        "userIDOverrides": [
            {"groupID": o.group_id, "ids": list(o.ids), "environment": o.environment, "unitType": o.unit_type}
            for o in overrides
        ],
    }
