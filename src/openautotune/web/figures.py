"""Plotly figures of the results, built in Python from a `Series` and sent to the page as JSON."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from openautotune.web.series import Series, VariantState

PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#475569",
    "#ea580c",
)
GRID = "#e2e8f0"
FIGURES = ("intervals", "probability_of_best", "cumulative", "daily", "traffic")


def plotly_text(text: str) -> str:
    """User text (a variant name) made inert for plotly, which renders a subset of HTML in trace names,
    legends, hover labels and tick labels (`<a href>` would become a live link). Escaped, plotly shows the
    text as typed: it decodes `&lt;`, `&gt;` and `&amp;` back when it draws."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _variant_names(series: Series) -> list[str]:
    return [plotly_text(variant.name) for variant in series.variants]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


# Long series go to plotly as numpy arrays: validated as one array (not element by element) and sent
# to the browser as typed arrays, which keeps a 2,160-update page fast to build and small to send.
def _times(epoch_ms: list[int]) -> npt.NDArray[np.float64]:
    """Epoch ms on a `date` axis: plotly.js reads numbers there as milliseconds since 1970 (UTC)."""
    return np.array(epoch_ms, dtype=np.float64)


def _floats(values: list[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def _layout(title: str, y_title: str, *, percent_axis: bool = False, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 15}},
        "margin": {"l": 52, "r": 12, "t": 40, "b": 20},
        "height": 330,
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0, "traceorder": "normal"},
        "hovermode": "x unified",
        "yaxis": {
            "title": {"text": y_title},
            "tickformat": ".0%" if percent_axis else None,
            "gridcolor": GRID,
            "zeroline": False,
        },
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"nticks": 6, "tickangle": 0, "automargin": True, "gridcolor": GRID, "zeroline": False},
    }
    layout.update(extra)
    return layout


def layout(title: str, y_title: str, *, percent_axis: bool = False, **extra: Any) -> dict[str, Any]:
    """The dashboard's common figure layout (for figures built in other modules)."""
    return _layout(title, y_title, percent_axis=percent_axis, **extra)


def embed(figure: go.Figure) -> str:
    """A figure's JSON, safe to embed in a `<script type="application/json">` element."""
    return _embeddable(figure.to_json())


def intervals(series: Series) -> go.Figure:
    """95% credible interval of each variant's rate (or mean), one trace per variant."""
    figure = go.Figure(layout=_layout("95% credible intervals", "", percent_axis=False, hovermode="closest"))
    latest = series.latest
    rate = series.metric == "occurrence"
    for index, name in enumerate(_variant_names(series)):
        state = latest.variants[index] if latest is not None and index < len(latest.variants) else None
        has = state is not None and state.mean is not None and state.ci_low is not None and state.ci_high is not None
        mean = state.mean if has and state is not None else None
        low = state.ci_low if has and state is not None else None
        high = state.ci_high if has and state is not None else None
        figure.add_trace(
            go.Scatter(
                x=[mean] if mean is not None else [],
                y=[name] if mean is not None else [],
                name=name,
                mode="markers",
                marker={"color": color(index), "size": 10},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [high - mean] if high is not None and mean is not None else [],
                    "arrayminus": [mean - low] if low is not None and mean is not None else [],
                    "color": color(index),
                    "thickness": 3,
                },
            )
        )
    figure.update_layout(
        xaxis={
            "tickformat": ".1%" if rate else ",.3~g",
            "title": {"text": "rate" if rate else "mean value"},
            "nticks": 6,
        },
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(160, 60 + 36 * len(series.variants)),
        showlegend=False,
    )
    return figure


def _lines_per_variant(figure: go.Figure, series: Series, value: Callable[[VariantState], float | None]) -> None:
    """One line per variant over the update times: `value` picks the number from each variant state."""
    figure.update_xaxes(type="date")
    times = _times([point.as_of_ms for point in series.updates])
    for index, name in enumerate(_variant_names(series)):
        figure.add_trace(
            go.Scatter(
                x=times,
                y=_floats([value(point.variants[index]) for point in series.updates]),
                name=name,
                mode="lines",
                line={"color": color(index), "width": 2},
            )
        )


def probability_of_best(series: Series) -> go.Figure:
    figure = go.Figure(layout=_layout("Probability of being best", "P(best)", percent_axis=True))
    _lines_per_variant(figure, series, attrgetter("probability_of_best"))
    figure.add_hline(y=series.autotune.definition.threshold, line={"dash": "dot", "color": "#64748b", "width": 1})
    figure.update_yaxes(range=[0, 1.02])
    return figure


def cumulative(series: Series) -> go.Figure:
    rate = series.metric == "occurrence"
    title = "Cumulative success rate" if rate else "Cumulative mean value"
    figure = go.Figure(layout=_layout(title, "rate" if rate else "mean", percent_axis=rate))
    _lines_per_variant(figure, series, attrgetter("mean"))
    return figure


def daily(series: Series) -> go.Figure:
    rate = series.metric == "occurrence"
    title = "Daily success rate" if rate else "Daily mean value"
    figure = go.Figure(layout=_layout(title, "rate" if rate else "mean", percent_axis=rate))
    days = [day.day for day in series.daily]
    for index, name in enumerate(_variant_names(series)):
        figure.add_trace(
            go.Scatter(
                x=days,
                y=_floats([day.variants[index].mean for day in series.daily]),
                name=name,
                mode="lines+markers",
                line={"color": color(index), "width": 2},
                marker={"size": 5},
            )
        )
    return figure


def traffic(series: Series) -> go.Figure:
    figure = go.Figure(layout=_layout("Traffic allocation (exposures per day)", "exposures", barmode="stack"))
    days = [entry.day for entry in series.daily_exposures]
    for index, name in enumerate(_variant_names(series)):
        figure.add_trace(
            go.Bar(
                x=days,
                y=[entry.counts[index] for entry in series.daily_exposures],
                name=name,
                marker={"color": color(index)},
            )
        )
    return figure


def all_figures(series: Series) -> dict[str, str]:
    """Figure JSON by name, safe to embed in a `<script type="application/json">` element."""
    built = {
        "intervals": intervals(series),
        "probability_of_best": probability_of_best(series),
        "cumulative": cumulative(series),
        "daily": daily(series),
        "traffic": traffic(series),
    }
    return {name: _embeddable(figure.to_json()) for name, figure in built.items()}


def _embeddable(text: str) -> str:
    # JSON-level escaping: nothing in a figure can close the script element it is embedded in. (What
    # plotly itself renders as HTML is escaped where user text enters a figure: `plotly_text`.)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
