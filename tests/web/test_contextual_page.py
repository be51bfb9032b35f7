"""The contextual section of the autotune page: policy-value chart, reading, effective sample sizes,
coefficients and prior/exploration notes, from records written by real engine updates (SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.store import updates
from openautotune.testing import TestApp
from openautotune.web import contextual_view
from tests.engine.conftest import Env
from tests.web.contextual_seed import contextual, traffic, trained
from tests.web.helpers import HOUR_MS, sign_in

ESTIMATORS = ["IPW", "Self-normalised IPW", "Doubly robust"]


def _figure(page: str, name: str) -> dict[str, Any] | None:
    found = re.search(rf'<script type="application/json" id="figure-{name}">(.*?)</script>', page, re.S)
    return json.loads(found.group(1)) if found is not None else None


def _values(values: Any) -> list[float | None]:
    """A plotly array: a list, or a typed array `{"dtype": "f8", "bdata": base64}`."""
    if isinstance(values, dict):
        return [float(v) for v in np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])]
    return list(values)


def _section(page: str) -> str:
    found = re.search(r'<section class="card" id="contextual">(.*?)</section>', page, re.S)
    assert found is not None, "no contextual section"
    return html.unescape(found.group(1))


def test_trained_policy_shows_values_reading_and_coefficients(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    autotune = trained(env)
    with env.db.read() as conn:
        latest = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert latest is not None
    part = latest.record["contextual"]
    value = part["policyValue"]
    names = {v.id: v.name for v in autotune.definition.variants}
    best_name = names[value["bestSingleVariantId"]]

    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{autotune.id}")
    assert page.status_code == 200
    figure = _figure(page.text, "policy_value")
    assert figure is not None
    traces = figure["data"]
    assert [t["name"] for t in traces] == ["Personalized policy", f"Best single variant ({best_name})", "Uniform split"]
    for trace, key in zip(traces, ["personalized", "bestSingle", "uniform"], strict=True):
        assert trace["x"] == ESTIMATORS
        expected = value[key]
        assert _values(trace["y"]) == pytest.approx([expected["ipw"], expected["snipw"], expected["dr"]], abs=1e-12)
        highs = [expected[f"{e}Interval"][1] - expected[e] for e in ("ipw", "snipw", "dr")]
        lows = [expected[e] - expected[f"{e}Interval"][0] for e in ("ipw", "snipw", "dr")]
        assert _values(trace["error_y"]["array"]) == pytest.approx(highs, abs=1e-12)
        assert _values(trace["error_y"]["arrayminus"]) == pytest.approx(lows, abs=1e-12)

    text = _section(page.text)
    personalized, best = value["personalized"], value["bestSingle"]
    gain = 100 * (personalized["dr"] - best["dr"])
    assert gain > 5  # country decides the best variant here: personalization clearly pays
    assert f"Personalization is worth +{gain:.1f} points over the best single variant ({best_name})" in text
    low, high = personalized["drInterval"]
    assert f"95% interval {100 * low:.1f}% – {100 * high:.1f}%" in text
    ess = re.search(r'<tr data-policy="personalized">.*?</tr>', text, re.S)
    assert ess is not None and f"{personalized['effectiveSampleSize']:,.0f}" in ess.group(0)
    assert f"of {part['units']:,}" in ess.group(0)

    # Coefficients: every variant's features, labelled by feature and category, with the record's weights.
    table = re.search(r'<table id="coefficients-table">(.*?)</table>', text, re.S)
    assert table is not None
    for item in part["variants"]:
        rows = re.findall(rf'<tr[^>]*data-variant="{item["id"]}">(.*?)</tr>', table.group(1), re.S)
        cells = " ".join(rows)
        assert "age (per unit)" in cells and "country = DE" in cells and "country = FR" in cells
        assert f"{item['weightsCategorical']['country']['DE']:+.4g}" in cells
        assert f"{item['weightsNumerical']['age']:+.4g}" in cells
    assert "prior" not in text and contextual_view.EXPLORING_NOTE not in text


def test_notes_before_training_and_no_section_for_plain_autotunes(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    autotune = contextual(env)
    plain = env.create("Plain")
    sign_in(client, test_app.console_key)

    before = client.get(f"/autotunes/{autotune.id}").text
    assert contextual_view.NO_UPDATE_NOTE in _section(before) and _figure(before, "policy_value") is None

    start = autotune.started_at_ms
    assert start is not None
    traffic(env, autotune, np.random.default_rng(1), 36, start + 1000)
    assert update_autotune(env.db, env.clock, autotune.id, start + 30 * 60_000).updated
    exploring = client.get(f"/autotunes/{autotune.id}").text
    section = _section(exploring)
    assert contextual_view.EXPLORING_NOTE in section
    assert _figure(exploring, "policy_value") is None and "coefficients-table" not in section

    # After the window, with fewer than 20 units per variant: every model stays on its prior, and says so.
    assert update_autotune(env.db, env.clock, autotune.id, start + 3 * HOUR_MS).updated
    with env.db.read() as conn:
        latest = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert latest is not None
    on_prior = _section(client.get(f"/autotunes/{autotune.id}").text)
    for item, name in zip(latest.record["contextual"]["variants"], ("alpha", "beta", "gamma"), strict=True):
        assert item["onPrior"] and item["units"] < 20
        assert (
            f"{name}: {item['units']} units; the model needs at least 20, so this variant stays on its prior."
            in on_prior
        )
    assert contextual_view.EXPLORING_NOTE not in on_prior

    page = client.get(f"/autotunes/{plain.id}")
    assert page.status_code == 200
    assert 'id="contextual"' not in page.text and _figure(page.text, "policy_value") is None


def _row(key: str, dr: float, low: float, high: float) -> contextual_view.PolicyRow:
    estimate = contextual_view.Estimate(dr, low, high)
    label = {"personalized": "Personalized policy", "bestSingle": "Best single variant (b)"}[key]
    return contextual_view.PolicyRow(key, label, "#000", (estimate, estimate, estimate), 100.0, 200)


def test_reading_when_personalization_trails_or_lower_is_better() -> None:
    trails = contextual_view.reading(
        [_row("personalized", 0.30, 0.25, 0.35), _row("bestSingle", 0.32, 0.28, 0.36)], True, True
    )
    assert trails is not None and trails.startswith("Personalization trails the best single variant (b) by 2.0 points")
    assert trails.endswith("the intervals overlap.")
    lower = contextual_view.reading(
        [_row("personalized", 1.5, 1.2, 1.8), _row("bestSingle", 2.5, 2.2, 2.8)], False, False
    )
    assert lower is not None and lower.startswith(
        "Personalization is worth +1 per unit over the best single variant (b) (lower is better)"
    )
    assert "overlap" not in lower
