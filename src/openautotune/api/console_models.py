"""Wire models of the Console API for autotunes (console-api.md). They stop at `api/`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from openautotune.domain import windows
from openautotune.domain.rules import (
    DELAYED_CONVERSIONS,
    ESTIMATORS,
    MAX_HOLDOUT_PERCENT,
    MAX_NAME_LENGTH,
    MIN_SHARE,
    OPTIMIZATION_PARAMETERS,
    WINNER_RULES,
)


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


def _enum(allowed: tuple[str, ...]) -> Any:
    return Field(json_schema_extra={"enum": list(allowed)})


ExplorationWindow = Annotated[str, _one_of(windows.EXPLORATION_WINDOWS), _enum(windows.EXPLORATION_WINDOWS)]
AttributionWindow = Annotated[str, _one_of(windows.ATTRIBUTION_WINDOWS), _enum(windows.ATTRIBUTION_WINDOWS)]
_UNITS = tuple(windows.ATTRIBUTION_UNITS)
AttributionWindowUnit = Annotated[str, _one_of(_UNITS), _enum(_UNITS)]
_THRESHOLDS = tuple(windows.WINNER_THRESHOLDS)
WinnerThreshold = Annotated[str, _one_of(_THRESHOLDS), _enum(_THRESHOLDS)]
OptimizationParameter = Annotated[str, _one_of(OPTIMIZATION_PARAMETERS), _enum(OPTIMIZATION_PARAMETERS)]
Estimator = Annotated[str, _one_of(ESTIMATORS), _enum(ESTIMATORS)]
WinnerRule = Annotated[str, _one_of(WINNER_RULES), _enum(WINNER_RULES)]
DelayedConversions = Annotated[str, _one_of(DELAYED_CONVERSIONS), _enum(DELAYED_CONVERSIONS)]
HoldoutPercent = Annotated[float, Field(ge=0, le=MAX_HOLDOUT_PERCENT, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=MIN_SHARE, le=1)]
NonEmpty = Annotated[str, Field(min_length=1)]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: NonEmpty
    json_: dict[str, Any] = Field(alias="json")
    size: Annotated[float, Field(ge=0, le=100)] | None = None


class VariantOut(BaseModel):
    id: str
    name: str
    json_: dict[str, Any] = Field(alias="json")
    size: float | None = None


class GuardrailIO(BaseModel):
    """A guardrail metric (extension; docs/engine.md, "Health"): the variants' rates of `event`
    (with `value`, when set) must not differ from the best by more than `maxRelativeHarm`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event: NonEmpty
    value: str | None = None
    higherIsBetter: bool
    maxRelativeHarm: Annotated[float, Field(ge=0, le=10)]


class Winner(BaseModel):
    id: str
    name: str


class _Optional(BaseModel):
    """Fields every body may carry; absent means "not set" (create, full update) or "unchanged" (patch)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    description: str | None = None
    idType: NonEmpty | None = None
    successEventValue: str | None = None
    attributionWindowUnit: AttributionWindowUnit | None = None
    explorationWindowRate: Share | None = None
    longtermExplorationAllocation: Share | None = None
    metadataField: str | None = None
    higherIsBetter: bool | None = None
    isContextual: bool | None = None
    metricSourceID: str | None = None
    linkedExperimentName: str | None = None
    goalRichText: str | None = None
    optimizationParameter: OptimizationParameter | None = None
    valueColumn: str | None = None
    featureList: list[str] | None = None
    # Extensions (engine.md): absent or null means the default, periodWeighted and sequential.
    estimator: Estimator | None = None
    winnerRule: WinnerRule | None = None
    holdoutPercent: HoldoutPercent | None = None
    delayedConversions: DelayedConversions | None = None
    guardrails: Annotated[list[GuardrailIO], Field(max_length=10)] | None = None
    # Echoed read-only fields (checked or ignored by the service; see console-api.md).
    id: str | None = None
    isStarted: bool | None = None
    lastModifierID: str | None = None
    lastModifierName: str | None = None
    lastModifierEmail: str | None = None
    lastModifiedTime: int | None = None
    creatorID: str | None = None
    creatorName: str | None = None
    creatorEmail: str | None = None
    createdTime: int | None = None
    winner: Winner | None = None
    version: int | None = None
    tags: list[str] | None = None
    targetApps: list[str] | None = None
    holdoutIDs: list[str] | None = None
    team: str | None = None
    teamID: str | None = None


class AutotuneCreate(_Optional):
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    variants: Annotated[list[VariantIn], Field(min_length=2)]
    successEvent: NonEmpty
    explorationWindow: ExplorationWindow
    attributionWindow: AttributionWindow
    winnerThreshold: WinnerThreshold


class AutotuneFullUpdate(_Optional):
    name: str | None = None
    variants: Annotated[list[VariantIn], Field(min_length=2)]
    successEvent: NonEmpty
    explorationWindow: ExplorationWindow
    attributionWindow: AttributionWindow
    winnerThreshold: WinnerThreshold


class AutotunePartialUpdate(_Optional):
    name: str | None = None
    variants: Annotated[list[VariantIn], Field(min_length=2)] | None = None
    successEvent: NonEmpty | None = None
    explorationWindow: ExplorationWindow | None = None
    attributionWindow: AttributionWindow | None = None
    winnerThreshold: WinnerThreshold | None = None


class AutotuneOut(BaseModel):
    """The `data` of every answer that carries an autotune."""

    id: str
    name: str
    description: str
    idType: str
    variants: list[VariantOut]
    successEvent: str
    successEventValue: str
    explorationWindow: str
    attributionWindow: str
    winnerThreshold: str
    isStarted: bool
    winner: Winner | None
    creatorID: str
    creatorName: str
    creatorEmail: str | None
    createdTime: int
    lastModifierID: str
    lastModifierName: str
    lastModifierEmail: str | None
    lastModifiedTime: int
    tags: list[str]
    targetApps: list[str]
    holdoutIDs: list[str]
    team: str | None
    teamID: str | None
    version: int | None = None
    attributionWindowUnit: str | None = None
    explorationWindowRate: float | None = None
    longtermExplorationAllocation: float | None = None
    metadataField: str | None = None
    higherIsBetter: bool | None = None
    isContextual: bool | None = None
    metricSourceID: str | None = None
    linkedExperimentName: str | None = None
    goalRichText: str | None = None
    optimizationParameter: str | None = None
    valueColumn: str | None = None
    featureList: list[str] | None = None
    estimator: str | None = None
    winnerRule: str | None = None
    holdoutPercent: float | None = None
    delayedConversions: str | None = None
    guardrails: list[GuardrailIO] | None = None


class AutotuneAnswer(BaseModel):
    message: str
    data: AutotuneOut


class Pagination(BaseModel):
    itemsPerPage: int
    pageNumber: int
    nextPage: str | None
    previousPage: str | None
    totalItems: int
    all: str


class AutotuneListAnswer(BaseModel):
    message: str
    data: list[AutotuneOut]
    pagination: Pagination


class MessageAnswer(BaseModel):
    message: str


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: NonEmpty | None = None
    groupID: NonEmpty | None = None
    decisionReason: str
    removeTargeting: bool | None = None
    holdout: Annotated[float, Field(ge=0, le=50)] | None = None


class ConditionalOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Annotated[str, _one_of(("gate", "segment")), _enum(("gate", "segment"))]
    id: str
    groupID: str
    environment: str | None = None


class UserIdOverrideIO(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    groupID: NonEmpty
    ids: list[str]
    environment: str | None = None
    unitType: str | None = None


class OverridesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    overrides: list[ConditionalOverride] = Field(default_factory=list)
    userIDOverrides: list[UserIdOverrideIO] = Field(default_factory=list)


class OverridesData(BaseModel):
    overrides: list[ConditionalOverride]
    userIDOverrides: list[UserIdOverrideIO]


class OverridesAnswer(BaseModel):
    message: str
    data: OverridesData


class ErrorItem(BaseModel):
    property: str
    errorMessage: str


class ErrorBody(BaseModel):
    status: int
    message: str
    errors: list[ErrorItem] | None = None
