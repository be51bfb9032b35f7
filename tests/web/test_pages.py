"""The list and autotune pages, their actions, and the results history API (in-process)."""

from __future__ import annotations

import base64
import json
import re

from fastapi.testclient import TestClient

from openautotune.domain.autotune import Status
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import updates
from openautotune.testing import START_MS, TestApp
from tests.web.helpers import ADMIN, HOUR_MS, create, csrf_of, insert_records, record, sign_in

HISTORY = "/console/v1/autotunes/{}/results/history"


def _length(values: object) -> int:
    """Points in a plotly array: a list, or a typed array `{"dtype": "f8", "bdata": base64}`."""
    if isinstance(values, dict):
        return len(base64.b64decode(values["bdata"])) // int(values["dtype"][1:])
    assert isinstance(values, list)
    return len(values)


def _figure(html: str, name: str) -> dict[str, object]:
    found = re.search(rf'<script type="application/json" id="figure-{name}">(.*?)</script>', html, re.S)
    assert found is not None
    figure: dict[str, object] = json.loads(found.group(1))
    return figure


def test_list_shows_each_autotune_with_its_leader(client: TestClient, test_app: TestApp) -> None:
    running = create(test_app.db, test_app.clock, "Button color")
    create(test_app.db, test_app.clock, "Draft one")
    autotune_service.start(test_app.db, test_app.clock, ADMIN, running.id)
    running = autotune_service.get(test_app.db, running.id)
    insert_records(test_app.db, running, 30, START_MS)
    sign_in(client, test_app.console_key)
    page = client.get("/")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-id="([^"]+)">(.*?)</tr>', page.text, re.S)
    assert [row_id for row_id, _ in rows] == ["button_color", "draft_one"]
    first = rows[0][1]
    assert "exploiting" in first and "blue" in first and "70.0%" in first and "3,000" in first
    assert "draft" in rows[1][1]


def test_autotune_page_plots_one_trace_per_variant(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    autotune_service.start(test_app.db, test_app.clock, ADMIN, made.id)
    made = autotune_service.get(test_app.db, made.id)
    insert_records(test_app.db, made, 49, START_MS)  # 49 hourly updates over 3 UTC days
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}")
    assert page.status_code == 200
    assert "blue leads with 70% probability of being best; needs 95%." in page.text
    for name, points in (("probability_of_best", 49), ("cumulative", 49), ("daily", 3)):
        data = _figure(page.text, name)["data"]
        assert isinstance(data, list)
        assert [trace["name"] for trace in data] == ["red", "blue"]
        assert all(_length(trace["x"]) == _length(trace["y"]) == points for trace in data)
    assert "/static/plotly.min.js" in page.text
    assert 'id="action-decide"' in page.text and 'id="action-reset"' in page.text


def test_actions_go_through_the_service_with_the_dashboard_actor(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}")
    assert 'id="action-start"' in page.text
    confirm = client.get(f"/autotunes/{made.id}/confirm/start")
    assert confirm.status_code == 200
    done = client.post(
        f"/autotunes/{made.id}/start", data={"csrf_token": csrf_of(confirm.text)}, follow_redirects=False
    )
    assert done.status_code == 303
    assert autotune_service.get(test_app.db, made.id).status is Status.RUNNING
    entry = autotune_service.audit_history(test_app.db, made.id)[0]
    assert (entry.action, entry.actor_name) == ("start", "DASHBOARD")
    assert entry.key_id not in (test_app.console_key, "")

    token = csrf_of(client.get(f"/autotunes/{made.id}").text)
    for reason in ("", "nul \x00 byte", "x" * 1001):
        refused = client.post(
            f"/autotunes/{made.id}/decide", data={"csrf_token": token, "variant": "blue", "reason": reason}
        )
        assert refused.status_code == 400
    assert client.get("/autotunes/%00").status_code == 404
    assert client.get(HISTORY.format("%00"), headers=test_app.console_headers()).status_code == 404
    decided = client.post(
        f"/autotunes/{made.id}/decide",
        data={"csrf_token": token, "variant": made.definition.variants[1].id, "reason": "blue is nicer"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    after = autotune_service.get(test_app.db, made.id)
    assert after.status is Status.FINISHED and after.winner_variant_id == made.definition.variants[1].id
    assert autotune_service.audit_history(test_app.db, made.id)[0].detail == "blue is nicer"
    row = re.search(rf'<tr data-id="{made.id}">(.*?)</tr>', client.get("/").text, re.S)
    assert row is not None and "finished" in row.group(1) and "blue" in row.group(1)  # the winner leads
    again = client.post(f"/autotunes/{made.id}/start", data={"csrf_token": token})
    assert again.status_code == 400
    assert "already finished" in again.text


def test_forms_without_csrf_are_refused(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    sign_in(client, test_app.console_key)
    assert client.post(f"/autotunes/{made.id}/start", data={"csrf_token": "nope"}).status_code == 403
    assert autotune_service.get(test_app.db, made.id).status is Status.DRAFT


def test_read_only_keys_see_no_actions_and_cannot_act(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    sign_in(client, test_app.read_only_key)
    page = client.get(f"/autotunes/{made.id}")
    assert page.status_code == 200
    assert "action-" not in page.text
    assert client.get(f"/autotunes/{made.id}/confirm/start").status_code == 403
    answer = client.post(f"/autotunes/{made.id}/start", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 403
    assert autotune_service.get(test_app.db, made.id).status is Status.DRAFT


def test_unknown_autotune_is_a_404_page(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    assert client.get("/autotunes/nope").status_code == 404


def test_user_text_is_escaped(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock, "x</script><b>bold", variants=("<i>a", "b&c"))
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}")
    assert "</script><b>" not in page.text and "<i>a" not in page.text


def test_plotly_is_served_locally(client: TestClient) -> None:
    answer = client.get("/static/plotly.min.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert len(answer.content) > 1_000_000


def test_history_api(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    autotune_service.start(test_app.db, test_app.clock, ADMIN, made.id)
    made = autotune_service.get(test_app.db, made.id)
    insert_records(test_app.db, made, 49, START_MS)
    assert client.get(HISTORY.format(made.id)).status_code == 401
    headers = test_app.console_headers(read_only=True)
    assert client.get(HISTORY.format("nope"), headers=headers).json() == {
        "status": 404,
        "message": "Autotune Experiment not found.",
    }
    body = client.get(HISTORY.format(made.id), headers=headers).json()
    data = body["data"]
    assert data["statusSentence"] == "blue leads with 70% probability of being best; needs 95%."
    assert len(data["updates"]) == 49
    last = data["updates"][-1]
    assert last["asOf"] == START_MS + 49 * HOUR_MS
    assert [v["units"] for v in last["variants"]] == [2450, 2450]
    assert [v["successes"] for v in last["variants"]] == [245, 294]
    assert [day["day"] for day in data["daily"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    # Day totals add up to the cumulative numbers.
    assert sum(day["variants"][0]["units"] for day in data["daily"]) == 2450
    spec = client.get("/openapi.json").json()
    assert "/console/v1/autotunes/{autotune_id}/results/history" in spec["paths"]


def test_the_page_cache_tops_up_with_new_updates_and_forgets_old_runs(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    autotune_service.start(test_app.db, test_app.clock, ADMIN, made.id)
    made = autotune_service.get(test_app.db, made.id)
    insert_records(test_app.db, made, 10, START_MS)
    sign_in(client, test_app.console_key)
    headers = test_app.console_headers()
    assert len(client.get(HISTORY.format(made.id), headers=headers).json()["data"]["updates"]) == 10
    with test_app.db.write() as conn:  # one more hourly update, as the engine would write it
        as_of = START_MS + 11 * HOUR_MS
        body = record(made, as_of, "exploring", [(600, 60, 0.4, 0.5), (600, 72, 0.6, 0.5)])
        updates.insert_record(
            conn, updates.UpdateRecord(made.id, made.created_ms, made.run, as_of, as_of, "exploring", None, None, body)
        )
    page = client.get(f"/autotunes/{made.id}")
    data = _figure(page.text, "probability_of_best")["data"]
    assert isinstance(data, list) and all(_length(trace["x"]) == 11 for trace in data)
    autotune_service.reset(test_app.db, test_app.clock, ADMIN, made.id)  # a new run has no updates yet
    assert client.get(HISTORY.format(made.id), headers=headers).json()["data"]["updates"] == []


def test_the_exposures_log_fragment(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    assert client.get(f"/autotunes/{made.id}/exposures").status_code == 401
    sign_in(client, test_app.console_key)
    assert "No exposures logged yet." in client.get(f"/autotunes/{made.id}/exposures").text
    assert client.get("/autotunes/nope/exposures").status_code == 404
    assert 'data-refresh="/autotunes/button_color/exposures"' in client.get(f"/autotunes/{made.id}").text


def test_a_value_metric_shows_means_per_unit(client: TestClient, test_app: TestApp) -> None:
    fields = {
        "name": "Basket value",
        "variants": [VariantInput("small", {}), VariantInput("large", {})],
        "success_event": "purchase",
        "exploration_window": "1hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
        "optimization_parameter": "value",
    }
    made = autotune_service.create(test_app.db, test_app.clock, ADMIN, fields)
    made = autotune_service.start(test_app.db, test_app.clock, ADMIN, made.id)
    body = record(made, START_MS + HOUR_MS, "exploiting", [(100, 20, 0.2, 0.2), (100, 30, 0.8, 0.8)])
    body["metric"] = "value"
    body["variants"][0]["total"], body["variants"][1]["total"] = 250.0, 420.0
    with test_app.db.write() as conn:
        updates.insert_record(
            conn,
            updates.UpdateRecord(
                made.id, made.created_ms, made.run, START_MS + HOUR_MS, 0, "exploiting", None, None, body
            ),
        )
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}").text
    assert "Value sum" in page and "Mean" in page and "4.200" in page  # 420 / 100 units
    data = client.get(HISTORY.format(made.id), headers=test_app.console_headers()).json()["data"]
    assert data["metric"] == "value"
    assert [v["mean"] for v in data["updates"][0]["variants"]] == [2.5, 4.2]
    assert data["statusSentence"] == "large leads with 80% probability of being best; needs 95%."
