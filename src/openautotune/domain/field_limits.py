"""What each stored field of an autotune may hold, checked before anything is written (docs/api.md).

Whatever an autotune holds is rendered into the config specs every SDK downloads, so a value that
cannot be encoded (a lone surrogate, an integer JavaScript SDKs cannot read exactly, nesting orjson
refuses) would break serving for every autotune. These checks run in the domain, so the Console API,
the dashboard and the CLI all refuse such a value with a `FieldProblem` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from openautotune.domain.autotune import Definition, UserIdOverride
from openautotune.domain.errors import FieldProblem
from openautotune.domain.json_limits import JsonLimits, JsonProblem, check_json, check_text

# Identifiers SDK events carry are capped at ingestion (service.ingest.parse) at 256 characters
# (64 for an id type); an autotune naming a longer one could never match an event.
MAX_IDENTIFIER = 256
MAX_ID_TYPE = 64
MAX_DESCRIPTION = 10_000
MAX_RICH_TEXT = 64 * 1024
MAX_VARIANTS = 100
MAX_VARIANT_NAME = 100
MAX_FEATURES = 1_000
MAX_OVERRIDE_IDS = 10_000

# Variant payloads are served to every SDK, JavaScript's among them, which reads numbers as doubles:
# an integer beyond 2^53 would silently change value there (console-api.md, Limits).
MAX_SAFE_INTEGER = 2**53 - 1
VARIANT_JSON_LIMITS = JsonLimits(max_abs_int=MAX_SAFE_INTEGER)

# Console property -> (Definition attribute, most characters).
TEXT_FIELDS: dict[str, tuple[str, int]] = {
    "description": ("description", MAX_DESCRIPTION),
    "idType": ("id_type", MAX_ID_TYPE),
    "successEvent": ("success_event", MAX_IDENTIFIER),
    "successEventValue": ("success_event_value", MAX_IDENTIFIER),
    "metadataField": ("metadata_field", MAX_IDENTIFIER),
    "metricSourceID": ("metric_source_id", MAX_IDENTIFIER),
    "linkedExperimentName": ("linked_experiment_name", MAX_IDENTIFIER),
    "goalRichText": ("goal_rich_text", MAX_RICH_TEXT),
    "valueColumn": ("value_column", MAX_IDENTIFIER),
}


def _text(problems: list[FieldProblem], value: str | None, where: str, limit: int) -> None:
    if value is None:
        return
    try:
        check_text(value, where, limit)
    except JsonProblem as problem:
        problems.append(FieldProblem(problem.path, problem.message))


def definition_field_problems(definition: Definition) -> list[FieldProblem]:
    """Every text, list and variant payload of `definition` that breaks its limit."""
    problems: list[FieldProblem] = []
    _text(problems, definition.name, "name", MAX_IDENTIFIER)  # rules.py keeps names to 100
    for prop, (attr, limit) in TEXT_FIELDS.items():
        _text(problems, getattr(definition, attr), prop, limit)
    if len(definition.variants) > MAX_VARIANTS:
        problems.append(FieldProblem("variants", f"An autotune has at most {MAX_VARIANTS} variants"))
    for index, variant in enumerate(definition.variants[:MAX_VARIANTS]):
        where = f"variants[{index}]"
        _text(problems, variant.name, f"{where}.name", MAX_VARIANT_NAME)
        try:
            check_json(variant.json, VARIANT_JSON_LIMITS, f"{where}.json")
        except JsonProblem as problem:
            problems.append(FieldProblem(problem.path, problem.message))
    features = definition.feature_list or ()
    if len(features) > MAX_FEATURES:
        problems.append(FieldProblem("featureList", f"lists at most {MAX_FEATURES} attributes"))
    for index, feature in enumerate(features[:MAX_FEATURES]):
        _text(problems, feature, f"featureList[{index}]", MAX_IDENTIFIER)
    return problems


def reason_problems(reason: str) -> list[FieldProblem]:
    """A decision reason is kept in the audit log: the limits of a description."""
    problems: list[FieldProblem] = []
    _text(problems, reason, "decisionReason", MAX_DESCRIPTION)
    return problems


def override_problems(overrides: Sequence[UserIdOverride]) -> list[FieldProblem]:
    """Every user-id override field that breaks its limit (the path as in the Console API body)."""
    problems: list[FieldProblem] = []
    total = sum(len(o.ids) for o in overrides)
    if total > MAX_OVERRIDE_IDS:
        problems.append(FieldProblem("userIDOverrides", f"An autotune overrides at most {MAX_OVERRIDE_IDS} ids"))
        return problems
    for index, override in enumerate(overrides):
        where = f"userIDOverrides[{index}]"
        _text(problems, override.group_id, f"{where}.groupID", MAX_IDENTIFIER)
        _text(problems, override.environment, f"{where}.environment", MAX_IDENTIFIER)
        _text(problems, override.unit_type, f"{where}.unitType", MAX_ID_TYPE)
        for number, unit in enumerate(override.ids):
            _text(problems, unit, f"{where}.ids[{number}]", MAX_IDENTIFIER)
    return problems
