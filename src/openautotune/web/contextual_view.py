"""The contextual section of the autotune page (contextual.md, Results): what personalization is worth
and what each variant's model learned, read from the latest update record's `contextual` part.

The engine writes that part (`contextual.training`); this module only reads and shapes it: the policy-value
chart (personalized policy, best single variant and uniform split, each estimated by IPW, self-normalised
IPW and doubly robust with its bootstrap 95% interval), a one-line reading, the effective sample sizes,
the largest model coefficients of each variant, and notes while the models are on their prior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import plotly.graph_objects as go

from openautotune.domain.autotune import Autotune
from openautotune.engine import history
from openautotune.store.database import Database
from openautotune.web import figures
from openautotune.web.templating import format_number, format_percent

ESTIMATORS: Final = (("ipw", "IPW"), ("snipw", "Self-normalised IPW"), ("dr", "Doubly robust"))
POLICIES: Final = ("personalized", "bestSingle", "uniform")
PERSONALIZED_COLOR: Final = "#0f766e"
UNIFORM_COLOR: Final = "#64748b"
TOP_COEFFICIENTS: Final = 8
EXPLORING_NOTE: Final = (
    "In the exploration window: traffic is split equally at random and no model is trained yet; "
    "the models, the personalized policy and its value appear at the first update after the window."
)
NO_UPDATE_NOTE: Final = (
    "No engine update yet for this run: every variant's model is still on its prior "
    "(traffic is split equally while the exploration window lasts)."
)


@dataclass(frozen=True)
class Estimate:
    """One policy's value by one estimator, with its bootstrap 95% interval (None where not finite)."""

    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class PolicyRow:
    key: str  # personalized, bestSingle or uniform
    label: str
    color: str
    estimates: tuple[Estimate, ...]  # in ESTIMATORS order
    effective_sample_size: float | None
    units: int | None


@dataclass(frozen=True)
class Coefficient:
    feature: str
    value: str | None  # the category; None for a numeric feature (weight per unit of the feature)
    weight: float
    size: float  # what the ranking uses: |weight|, times the feature's spread for a numeric feature

    @property
    def label(self) -> str:
        return f"{self.feature} = {self.value}" if self.value is not None else f"{self.feature} (per unit)"


@dataclass(frozen=True)
class VariantModel:
    variant_id: str
    name: str
    color: str
    units: int
    outcome_text: str
    on_prior: bool
    message: str | None
    intercept: float | None
    alpha: float | None
    coefficients: tuple[Coefficient, ...]  # largest first, at most TOP_COEFFICIENTS
    total_coefficients: int


@dataclass(frozen=True)
class ContextualSection:
    as_of_ms: int | None
    units: int | None
    sample_rate: float | None
    notes: tuple[str, ...]
    reading: str | None
    policies: tuple[PolicyRow, ...]  # empty until a policy value was estimated
    variants: tuple[VariantModel, ...]
    figure: str | None  # plotly JSON, embeddable; None when there is nothing to plot
    rate: bool  # occurrence (rates) or value (means)

    @property
    def estimator_labels(self) -> tuple[str, ...]:
        return tuple(label for _, label in ESTIMATORS)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _interval(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return _number(value[0]), _number(value[1])
    return None, None


def _policy_rows(autotune: Autotune, value: Mapping[str, Any]) -> tuple[PolicyRow, ...]:
    names = {variant.id: variant.name for variant in autotune.definition.variants}
    indexes = {variant.id: index for index, variant in enumerate(autotune.definition.variants)}
    best_id = value.get("bestSingleVariantId")
    best_name = names.get(best_id, str(best_id)) if isinstance(best_id, str) else "?"
    labels = {
        "personalized": ("Personalized policy", PERSONALIZED_COLOR),
        "bestSingle": (
            f"Best single variant ({best_name})",
            figures.color(indexes[best_id]) if isinstance(best_id, str) and best_id in indexes else UNIFORM_COLOR,
        ),
        "uniform": ("Uniform split", UNIFORM_COLOR),
    }
    rows: list[PolicyRow] = []
    for key in POLICIES:
        part = _mapping(value.get(key))
        if not part:
            continue
        estimates = []
        for field, _ in ESTIMATORS:
            low, high = _interval(part.get(f"{field}Interval"))
            estimates.append(Estimate(_number(part.get(field)), low, high))
        units = _number(part.get("units"))
        label, color = labels[key]
        rows.append(
            PolicyRow(
                key, label, color, tuple(estimates), _number(part.get("effectiveSampleSize")), _int_or_none(units)
            )
        )
    return tuple(rows)


def _int_or_none(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _spreads(features: Any) -> dict[str, float]:
    """Each numeric feature's training scale (the power of two nearest its standard deviation)."""
    spreads: dict[str, float] = {}
    for item in features if isinstance(features, list) else ():
        entry = _mapping(item)
        scale = _number(entry.get("scale"))
        if entry.get("kind") == "numeric" and isinstance(entry.get("name"), str) and scale is not None:
            spreads[entry["name"]] = abs(scale)
    return spreads


def _coefficients(item: Mapping[str, Any], spreads: Mapping[str, float]) -> list[Coefficient]:
    found: list[Coefficient] = []
    for feature, weight in _mapping(item.get("weightsNumerical")).items():
        w = _number(weight)
        if w is not None:
            found.append(Coefficient(str(feature), None, w, abs(w) * spreads.get(str(feature), 1.0)))
    for feature, values in _mapping(item.get("weightsCategorical")).items():
        for category, weight in _mapping(values).items():
            w = _number(weight)
            if w is not None:
                found.append(Coefficient(str(feature), str(category), w, abs(w)))
    found.sort(key=lambda c: (-c.size, c.feature, c.value or ""))
    return found


def _variant_models(autotune: Autotune, part: Mapping[str, Any], rate: bool) -> tuple[VariantModel, ...]:
    by_id = {str(_mapping(item).get("id")): _mapping(item) for item in part.get("variants") or ()}
    spreads = _spreads(part.get("features"))
    models: list[VariantModel] = []
    for index, variant in enumerate(autotune.definition.variants):
        item = by_id.get(variant.id)
        if item is None:
            continue
        coefficients = _coefficients(item, spreads)
        mean = _number(item.get("mean"))
        successes = _number(item.get("successes"))
        if rate:
            outcome = f"{int(successes):,} successes, {format_percent(mean)}" if successes is not None else "—"
        else:
            outcome = f"mean {format_number(mean)}"
        message = item.get("message")
        models.append(
            VariantModel(
                variant_id=variant.id,
                name=variant.name,
                color=figures.color(index),
                units=int(_number(item.get("units")) or 0),
                outcome_text=outcome,
                on_prior=item.get("onPrior") is True,
                message=message if isinstance(message, str) and message else None,
                intercept=_number(item.get("intercept")),
                alpha=_number(item.get("alpha")),
                coefficients=tuple(coefficients[:TOP_COEFFICIENTS]),
                total_coefficients=len(coefficients),
            )
        )
    return tuple(models)


def _amount(difference: float, rate: bool) -> str:
    return f"{100 * difference:.1f} points" if rate else f"{difference:.3g} per unit"


def _value_text(value: float | None, rate: bool) -> str:
    return format_percent(value) if rate else format_number(value)


def _interval_text(estimate: Estimate, rate: bool) -> str:
    if estimate.low is None or estimate.high is None:
        return "no interval"
    return f"{_value_text(estimate.low, rate)} – {_value_text(estimate.high, rate)}"


def reading(policies: Sequence[PolicyRow], rate: bool, higher_is_better: bool) -> str | None:
    """The plain-language line: the doubly robust estimate of personalization against the best single variant."""
    by_key = {row.key: row for row in policies}
    mine, best = by_key.get("personalized"), by_key.get("bestSingle")
    if mine is None or best is None:
        return None
    dr = len(ESTIMATORS) - 1
    ours, theirs = mine.estimates[dr], best.estimates[dr]
    if ours.value is None or theirs.value is None:
        return "Not enough logged data yet to estimate what personalization is worth."
    gain = ours.value - theirs.value if higher_is_better else theirs.value - ours.value
    subject = best.label[0].lower() + best.label[1:]
    if gain >= 0:
        head = f"Personalization is worth +{_amount(gain, rate)} over the {subject}"
        if not higher_is_better:
            head += " (lower is better)"
    else:
        head = f"Personalization trails the {subject} by {_amount(-gain, rate)}"
    detail = (
        f"doubly robust: {_value_text(ours.value, rate)}, 95% interval {_interval_text(ours, rate)}, "
        f"against {_value_text(theirs.value, rate)}, {_interval_text(theirs, rate)}"
    )
    overlap = (
        ours.low is not None
        and ours.high is not None
        and theirs.low is not None
        and theirs.high is not None
        and ours.low <= theirs.high
        and theirs.low <= ours.high
    )
    return f"{head} ({detail}){'; the intervals overlap' if overlap else ''}."


def policy_value_figure(policies: Sequence[PolicyRow], rate: bool) -> go.Figure:
    """One trace per policy; x = the estimators; each point with its 95% interval as an error bar."""
    figure = go.Figure(
        layout=figures.layout(
            "Policy value (off-policy estimates, 95% intervals)",
            "success rate" if rate else "mean value",
            percent_axis=rate,
            hovermode="closest",
            scattermode="group",
            scattergap=0.55,
        )
    )
    labels = [label for _, label in ESTIMATORS]
    for row in policies:
        values = [e.value for e in row.estimates]
        figure.add_trace(
            go.Scatter(
                x=labels,
                y=values,
                name=figures.plotly_text(row.label),  # holds a variant name
                mode="markers",
                marker={"color": row.color, "size": 11},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        e.high - e.value if e.high is not None and e.value is not None else None for e in row.estimates
                    ],
                    "arrayminus": [
                        e.value - e.low if e.low is not None and e.value is not None else None for e in row.estimates
                    ],
                    "color": row.color,
                    "thickness": 2,
                    "width": 6,
                },
                customdata=[[e.low, e.high] for e in row.estimates],
                hovertemplate=(
                    "%{x}: %{y:"
                    + (".2%" if rate else ".4g")
                    + "}<br>95%: %{customdata[0]:"
                    + (".2%" if rate else ".4g")
                    + "} – %{customdata[1]:"
                    + (".2%" if rate else ".4g")
                    + "}"
                ),
            )
        )
    figure.update_xaxes(type="category")
    return figure


def section(db: Database, autotune: Autotune) -> ContextualSection | None:
    """The contextual section for `autotune`, or None when it is not contextual."""
    if not autotune.definition.is_contextual:
        return None
    rate = not autotune.definition.optimizes_value
    latest = history.latest_records(db, [autotune]).get(autotune.id)
    if latest is None:
        return ContextualSection(None, None, None, (NO_UPDATE_NOTE,), None, (), (), None, rate)
    part = _mapping(latest.record.get("contextual") if isinstance(latest.record, Mapping) else None)
    return build(autotune, latest.as_of_ms, part, rate)


def build(autotune: Autotune, as_of_ms: int, part: Mapping[str, Any], rate: bool) -> ContextualSection:
    """The section from one record's `contextual` part (pure: no database)."""
    notes: list[str] = []
    message = part.get("message")
    if isinstance(message, str) and message.startswith("exploring"):
        notes.append(EXPLORING_NOTE)
    elif isinstance(message, str) and message:
        notes.append(f"No new policy at this update: {message}.")
    variants = _variant_models(autotune, part, rate)
    for model in variants:
        if model.on_prior:
            why = model.message or "too little data, so this variant stays on its prior"
            notes.append(f"{model.name}: {why}.")
    policies = _policy_rows(autotune, _mapping(part.get("policyValue")))
    higher = not autotune.definition.lower_is_better
    return ContextualSection(
        as_of_ms=as_of_ms,
        units=_int_or_none(_number(part.get("units"))),
        sample_rate=_number(part.get("sampleRate")),
        notes=tuple(notes),
        reading=reading(policies, rate, higher),
        policies=policies,
        variants=variants,
        figure=figures.embed(policy_value_figure(policies, rate)) if policies else None,
        rate=rate,
    )
