"""User text in plotly figures is inert: plotly renders a subset of HTML in trace names, legends, hover
and tick labels, so a variant named `<a href=…>` must reach it escaped (it then shows the name as typed).
Checked on the figure JSON the autotune page embeds (SQLite and PostgreSQL) and on the contextual
policy-value figure."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from openautotune.testing import TestApp
from openautotune.web import contextual_view, figures
from openautotune.web.figures import plotly_text
from tests.web.helpers import create, insert_records, sign_in

HOSTILE = '<a href="https://evil.example/">Win</a>'
AMPERSAND = "R&D <b>bold</b>"
ESCAPED = '&lt;a href="https://evil.example/"&gt;Win&lt;/a&gt;'


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _markup_in(figure: dict[str, Any]) -> list[str]:
    """Every string of the figure that plotly could read as a tag, except our own hover line breaks."""
    return [text for text in _strings(figure) if re.search(r"<(?!br>)", text)]


def test_plotly_text_escapes_what_plotly_would_render() -> None:
    assert plotly_text(HOSTILE) == ESCAPED
    assert plotly_text(AMPERSAND) == "R&amp;D &lt;b&gt;bold&lt;/b&gt;"
    assert plotly_text("plain name") == "plain name"


def test_variant_names_reach_every_page_figure_escaped(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock, name="Hostile names", variants=(HOSTILE, AMPERSAND))
    insert_records(test_app.db, made, 30, made.created_ms)
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}")
    assert page.status_code == 200
    embedded = dict(re.findall(r'<script type="application/json" id="figure-(\w+)">(.*?)</script>', page.text, re.S))
    assert set(figures.FIGURES) <= set(embedded)
    for name in figures.FIGURES:
        assert "<" not in embedded[name]  # nothing can close the script element either
        figure = json.loads(embedded[name])
        assert _markup_in(figure) == [], name
        assert [trace["name"] for trace in figure["data"]] == [ESCAPED, plotly_text(AMPERSAND)], name
    intervals = json.loads(embedded["intervals"])
    assert [trace["y"] for trace in intervals["data"]] == [[ESCAPED], [plotly_text(AMPERSAND)]]
    # The rest of the page is Jinja-escaped: the name shows as text, never as a link.
    assert HOSTILE not in page.text and "&lt;a href=" in page.text


def test_the_policy_value_figure_escapes_the_best_variant_name(test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock, variants=(HOSTILE, "blue"))
    best = made.definition.variants[0].id
    estimate = {"ipw": 0.1, "ipwInterval": [0.05, 0.15], "snipw": 0.1, "snipwInterval": [0.05, 0.15]}
    policy = {**estimate, "dr": 0.1, "drInterval": [0.05, 0.15], "units": 100, "effectiveSampleSize": 90.0}
    part = {"policyValue": {"bestSingleVariantId": best, "personalized": policy, "bestSingle": policy}}
    section = contextual_view.build(made, made.created_ms, part, rate=True)
    assert section.figure is not None
    figure = json.loads(section.figure)
    assert _markup_in(figure) == []
    assert [trace["name"] for trace in figure["data"]] == ["Personalized policy", f"Best single variant ({ESCAPED})"]
