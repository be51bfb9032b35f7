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
    responses={code: {"model": ErrorBody} for code in (401, 404)},
)


class VariantResultOut(BaseModel):
    id: str
    name: str
    units: int = Field(description="Mature units analysed (exposed, attribution window passed)")
    successes: int = Field(description="Units with a (numeric, for value metrics) success event")
    mean: float = Field(description="Posterior mean of the rate (occurrence) or of the value per unit")
    ciLow: float = Field(description="Lower end of the 95% equal-tailed credible interval")
    ciHigh: float = Field(description="Upper end of the 95% equal-tailed credible interval")
    probabilityOfBest: float
    weight: float = Field(
        description="Traffic weight the latest update computed (0 before it); finished: 1 for the winner, else 0"
    )
    total: float = Field(description="Sum of the outcomes (value metrics; equals successes for occurrence)")


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
    contextual: dict[str, Any] | None = Field(
        default=None,
        description="Contextual autotunes only: per-variant coefficients and the off-policy value of the "
        "personalized policy against the best single variant and a uniform split (docs/contextual.md)",
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
            }
            for v in results.variants
        ],
        "run": results.run,
        "metric": results.metric,
        "allocationVersion": results.allocation_version,
        "message": results.message,
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
