"""`GET /console/v1/autotunes/{id}/results/history`: the time series behind every dashboard chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from openautotune.domain.errors import NotFound
from openautotune.domain.ids import could_be_autotune_id
from openautotune.domain.keys import KeyRecord
from openautotune.service import autotunes as autotune_service
from openautotune.service.keys import CONSOLE_HEADER, require_console_key
from openautotune.store.database import Database
from openautotune.web import series, views
from openautotune.web.auth import points_cache

router = APIRouter(tags=["Autotune results"])


def console_key(request: Request) -> KeyRecord:
    """Any active console key, with the Console API's exact 401 (the check lives in service.keys)."""
    return require_console_key(request.app.state.keys, request.headers.get(CONSOLE_HEADER))


MESSAGE = "Autotune results history read successfully."


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class VariantRef(_Model):
    id: str
    name: str


class VariantAtUpdate(_Model):
    id: str = Field(description="Variant id")
    probabilityOfBest: float | None = Field(description="Probability of being the best variant at this update")
    weight: float = Field(description="Share of traffic this update allocated to the variant (0..1)")
    units: int = Field(description="Cumulative mature units of the run analysed so far")
    successes: float = Field(description="Cumulative units with a success (occurrence) or sum of values (value)")
    mean: float | None = Field(description="Cumulative success rate, or mean value per unit")
    ciLow: float | None = Field(description="Lower end of the 95% credible interval of the rate or mean")
    ciHigh: float | None = Field(description="Upper end of the 95% credible interval of the rate or mean")


class UpdateEntry(_Model):
    asOf: int = Field(description="Time the update analysed up to (epoch ms)")
    stage: str = Field(description="exploring, exploiting or finished")
    variants: list[VariantAtUpdate]


class VariantOnDay(_Model):
    id: str
    units: int = Field(description="Units that matured that day")
    successes: float = Field(description="Their successes (occurrence) or the sum of their values (value)")
    mean: float | None = Field(description="Their success rate or mean value")
    exposures: int = Field(description="Exposures logged that day (traffic allocation)")


class DayEntry(_Model):
    day: str = Field(description="UTC date, YYYY-MM-DD")
    start: int = Field(description="Start of the day (epoch ms)")
    variants: list[VariantOnDay]


class ResultsHistory(_Model):
    id: str
    run: int
    status: str = Field(description="draft, running or finished")
    stage: str = Field(description="draft, exploring, exploiting or finished")
    statusSentence: str = Field(description="The one-line status shown on the dashboard")
    metric: str = Field(description="occurrence (rates) or value (means per unit)")
    winnerThreshold: float
    variants: list[VariantRef]
    updates: list[UpdateEntry] = Field(description="One entry per engine update of the current run, oldest first")
    daily: list[DayEntry] = Field(description="One entry per UTC day with matured units or exposures")


class ResultsHistoryResponse(_Model):
    message: str
    data: ResultsHistory


def to_model(data: series.Series) -> ResultsHistory:
    autotune = data.autotune
    ids = [variant.id for variant in data.variants]
    days: dict[str, DayEntry] = {}
    exposures = {entry.day: entry for entry in data.daily_exposures}
    outcome_days = {entry.day: entry for entry in data.daily}
    for day in sorted(set(exposures) | set(outcome_days)):
        outcome = outcome_days.get(day)
        traffic = exposures.get(day)
        start = outcome.start_ms if outcome is not None else traffic.start_ms if traffic is not None else 0
        variants = []
        for index, variant_id in enumerate(ids):
            state = outcome.variants[index] if outcome is not None else None
            variants.append(
                VariantOnDay(
                    id=variant_id,
                    units=state.units if state is not None else 0,
                    successes=state.successes if state is not None else 0.0,
                    mean=state.mean if state is not None else None,
                    exposures=traffic.counts[index] if traffic is not None else 0,
                )
            )
        days[day] = DayEntry(day=day, start=start, variants=variants)
    return ResultsHistory(
        id=autotune.id,
        run=autotune.run,
        status=autotune.status.value,
        stage=views.stage_of(autotune, data.latest),
        statusSentence=data.status_sentence,
        metric=data.metric,
        winnerThreshold=autotune.definition.threshold,
        variants=[VariantRef(id=variant.id, name=variant.name) for variant in data.variants],
        updates=[
            UpdateEntry(
                asOf=point.as_of_ms,
                stage=point.stage.value,
                variants=[
                    VariantAtUpdate(
                        id=state.variant_id,
                        probabilityOfBest=state.probability_of_best,
                        weight=state.weight,
                        units=state.units,
                        successes=state.successes,
                        mean=state.mean,
                        ciLow=state.ci_low,
                        ciHigh=state.ci_high,
                    )
                    for state in point.variants
                ],
            )
            for point in data.updates
        ],
        daily=list(days.values()),
    )


@router.get(
    "/console/v1/autotunes/{autotune_id}/results/history",
    response_model=ResultsHistoryResponse,
    summary="Results history of an autotune's current run",
    responses={401: {"description": "Not an active console key"}, 404: {"description": "Unknown autotune"}},
)
def results_history(
    request: Request, autotune_id: str, _key: Annotated[object, Depends(console_key)]
) -> ResultsHistoryResponse:
    """Per update: asOf, stage and per variant P(best), weight, cumulative units, successes, mean and 95% CI;
    per UTC day: units matured, successes (or value sums), means and exposures; plus the status sentence."""
    db: Database = request.app.state.db
    if not could_be_autotune_id(autotune_id):
        raise NotFound(autotune_service.NOT_FOUND)
    autotune = autotune_service.get(db, autotune_id)
    return ResultsHistoryResponse(
        message=MESSAGE, data=to_model(views.load_series(db, autotune, points_cache(request)))
    )
