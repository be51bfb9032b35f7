"""`GET /console/v1/autotunes/{id}/results`: an autotune's current results (docs/engine.md)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from openautotune.api.auth import console_key
from openautotune.api.console_models import ErrorBody, Winner
from openautotune.engine.results import Results, read_results
from openautotune.service import autotunes
from openautotune.store.database import Database

MESSAGE = "Autotune results read successfully."

router = APIRouter(
    prefix="/console/v1/autotunes",
    tags=["Autotunes"],
    responses={code: {"model": ErrorBody} for code in (401, 404, 429)},
)


class LiftOut(BaseModel):
    value: float = Field(description="Relative lift over the leader: mean / leader's mean - 1")
    low: float = Field(description="Lower end of its 95% interval")
    high: float = Field(description="Upper end of its 95% interval")


class VariantResultOut(BaseModel):
    id: str
    name: str
    units: int = Field(description="Mature units analysed (exposed, attribution window passed)")
    successes: int = Field(description="Units with a (numeric, for value metrics) success event")
    mean: float = Field(description="The estimator's observed rate (occurrence) or value per unit")
    ciLow: float = Field(description="Lower end of its 95% interval")
    ciHigh: float = Field(description="Upper end of its 95% interval")
    posteriorMean: float = Field(description="Mean of the posterior the probability of best is computed from")
    liftVsLeader: LiftOut | None = Field(
        description="Lift over the variant with the highest probability of best (0 for the leader itself); "
        "null before the first update or when the leader's mean is 0"
    )
    probabilityOfBest: float
    weight: float = Field(
        description="Traffic weight the latest update computed (0 before it); finished: 1 for the winner, else 0"
    )
    total: float = Field(description="Sum of the outcomes (value metrics; equals successes for occurrence)")
    immatureUnits: int = Field(
        default=0,
        description="Units still inside their attribution window at the latest update: not in `units`; "
        "the allocation counts the share of their outcome already observable (docs/engine.md)",
    )


class IntervalOut(BaseModel):
    value: float
    low: float = Field(description="Lower end of its 95% interval")
    high: float = Field(description="Upper end of its 95% interval")


class HoldoutVariantOut(BaseModel):
    id: str
    units: int
    successes: int
    total: float
    totalSq: float


class HoldoutOut(BaseModel):
    percent: float | None = Field(description="holdoutPercent of the autotune")
    units: int = Field(description="Mature units of the holdout")
    banditUnits: int = Field(description="Mature units the bandit served")
    variants: list[HoldoutVariantOut] = Field(description="The holdout's mature units per variant")
    holdoutMean: float = Field(description="Success rate (value per unit) of the holdout")
    banditMean: float = Field(description="Success rate (value per unit) of the bandit's units")
    lift: IntervalOut | None = Field(description="banditMean - holdoutMean with its interval; null without data")
    relativeLift: IntervalOut | None = Field(description="lift / holdoutMean with its interval")
    regretAvoided: IntervalOut | None = Field(
        description="Outcomes the bandit's units gained over the holdout's fixed split: banditUnits x lift "
        "(x -lift when lower is better)"
    )
    level: float
    message: str | None


class SrmOut(BaseModel):
    pValue: float | None = Field(
        description="Sample-ratio p-value, corrected for the check at every update (null: nothing to test yet)"
    )
    expected: list[float] = Field(description="Units each variant should have: sum over periods of units x weight")
    observed: list[int] = Field(description="Units each variant has (mature units of periods with a known split)")
    warning: str | None = Field(description="Set when pValue < the server's srm_threshold; names likely causes")
    fixedPValue: float | None = Field(default=None, description="The chi-square test's p-value for this look alone")
    chiSquare: float | None = Field(default=None, description="Chi-square statistic (weights may change by period)")
    df: int | None = Field(default=None, description="Its degrees of freedom (K - 1 when every variant had traffic)")
    traffic: str | None = Field(
        default=None, description='"explore" for a contextual autotune: only its explore-path units are tested'
    )
    untestedUnits: int | None = Field(
        default=None, description="Contextual autotunes: exploit-path units, counted but not tested (personalized)"
    )


class GuardrailVariantOut(BaseModel):
    id: str
    name: str
    units: int
    hits: int = Field(description="Units with the guardrail event in their attribution window")
    mean: float = Field(description="The estimator's rate of the guardrail event")
    probabilityOfHarm: float | None = Field(description="P(worse than the reference by more than the allowed harm)")
    harmful: bool


class GuardrailResultOut(BaseModel):
    event: str
    value: str | None
    higherIsBetter: bool
    maxRelativeHarm: float
    reference: str | None = Field(description="Id of the variant with the best rate (null before any data)")
    variants: list[GuardrailVariantOut]
    excluded: list[str] = Field(description="Variants this guardrail finds harmful")


class HealthOut(BaseModel):
    srm: SrmOut
    guardrails: list[GuardrailResultOut]
    excluded: list[str] = Field(description="Variants excluded from traffic by the guardrails")
    flagged: list[str] = Field(
        default_factory=list,
        description="Variants probably harmful (P >= 95%) but not yet excluded: they cannot be declared winner",
    )
    reasons: list[str] = Field(description="Why each was excluded or flagged")


class ResultsData(BaseModel):
    id: str
    stage: str = Field(description="draft, exploring, exploiting or finished")
    asOf: int | None = Field(description="Epoch ms of the latest update of the current run; null before the first")
    winner: Winner | None
    variants: list[VariantResultOut]
    run: int
    metric: str = Field(description="occurrence or value")
    allocationVersion: int
    message: str | None = Field(description="Why the data does not yet support a decision, if it does not")
    verdict: str = Field(description="One sentence saying what the data and the winner rule support, never more")
    estimator: str | None = Field(description="The estimator of the latest update: periodWeighted or pooled")
    health: HealthOut | None = Field(
        default=None,
        description="The latest update's health checks: sample ratio and guardrails (null before the first update)",
    )
    contextual: dict[str, Any] | None = Field(
        default=None,
        description="Contextual autotunes only: per-variant coefficients and the off-policy value of the "
        "personalized policy against the best single variant and a uniform split (docs/contextual.md)",
    )
    holdout: HoldoutOut | None = Field(
        default=None, description="With holdoutPercent > 0: the bandit against its holdout (docs/engine.md)"
    )


class ResultsAnswer(BaseModel):
    message: str
    data: ResultsData


def results_json(results: Results) -> dict[str, Any]:
    winner = results.winner
    answer: dict[str, Any] = {
        "id": results.id,
        "stage": results.stage.value,
        "asOf": results.as_of_ms,
        "winner": {"id": winner.id, "name": winner.name} if winner is not None else None,
        "variants": [
            {
                "id": v.id,
                "name": v.name,
                "units": v.units,
                "successes": v.successes,
                "mean": v.mean,
                "ciLow": v.ci_low,
                "ciHigh": v.ci_high,
                "probabilityOfBest": v.probability_of_best,
                "weight": v.weight,
                "total": v.total,
                "posteriorMean": v.posterior_mean,
                "liftVsLeader": (
                    {"value": v.lift.value, "low": v.lift.low, "high": v.lift.high} if v.lift is not None else None
                ),
                "immatureUnits": v.immature_units,
            }
            for v in results.variants
        ],
        "run": results.run,
        "metric": results.metric,
        "allocationVersion": results.allocation_version,
        "message": results.message,
        "verdict": results.verdict,
        "estimator": results.estimator,
        "holdout": results.holdout,
        "health": results.health,
    }
    if results.contextual is not None:
        answer["contextual"] = results.contextual
    return answer


@router.get("/{id}/results", response_model=ResultsAnswer, summary="Read Autotune Results")
def read_autotune_results(request: Request, _key: Annotated[object, Depends(console_key)], id: str) -> Response:
    db: Database = request.app.state.db
    results = read_results(db, autotunes.get(db, id))
    body = {"message": MESSAGE, "data": results_json(results)}
    return Response(orjson.dumps(body), media_type="application/json")
