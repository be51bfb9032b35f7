"""Exposures -> raw exposure rows and units (engine.md, Units and outcomes), through HTTP."""

from __future__ import annotations

from openautotune.clock import HOUR_MS, MINUTE_MS
from openautotune.service import autotunes
from tests.ingest.conftest import ACTOR, Ingest, create_autotune, exposure


def test_exposure_becomes_a_unit_with_variant_time_version_and_features(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    blue = autotune.definition.variants[1].id
    user = {"userID": "u1", "country": "DE", "custom": {"age": 31}, "customIDs": {"stableID": "s1"}}
    t = ingest.now - 5 * MINUTE_MS

    response = ingest.post([exposure("color", blue, user=user, time=t, version="1")])

    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 1, "rejected": [], "ignored": 0, "dropped": {}}
    [unit] = ingest.units()
    assert unit["autotune_id"] == "color"
    assert unit["run"] == 1
    assert unit["unit_id"] == "u1"
    assert unit["variant_id"] == blue
    assert unit["first_exposure_ms"] == t
    assert unit["allocation_version"] == 1
    assert unit["features"] == user
    assert unit["explore"] is False
    [raw] = ingest.exposures()
    assert (raw["analysable"], raw["reason"], raw["rule_id"], raw["config_version"]) == (True, "", blue, 1)
    assert raw["received_ms"] == ingest.now


def test_numeric_config_version_and_custom_id_type(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "by_company", id_type="companyID")
    red = autotune.definition.variants[0].id
    user = {"userID": "u1", "customIDs": {"companyID": "acme"}}

    ingest.post([exposure("by_company", red, user=user, time=ingest.now, version=1)])

    [unit] = ingest.units()
    assert (unit["unit_id"], unit["allocation_version"]) == ("acme", 1)


def test_user_id_type_matches_case_insensitively(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "lower", id_type="userid")
    red = autotune.definition.variants[0].id

    ingest.post([exposure("lower", red, user={"userID": "u9"}, time=ingest.now)])

    assert [unit["unit_id"] for unit in ingest.units()] == ["u9"]


def test_repeat_exposures_keep_the_first_and_store_each_raw_once(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    t = ingest.now - HOUR_MS

    ingest.post([exposure("color", red, time=t), exposure("color", red, time=t)])
    ingest.post([exposure("color", blue, time=t + 1000)])

    [unit] = ingest.units()
    assert (unit["variant_id"], unit["first_exposure_ms"]) == (red, t)
    assert len(ingest.exposures()) == 2  # the identical pair collapsed; the later one is kept for diagnostics


def test_a_strictly_earlier_exposure_arriving_later_replaces_the_unit(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    t = ingest.now - MINUTE_MS

    ingest.post([exposure("color", red, time=t, user={"userID": "u1", "country": "FR"})])
    ingest.post([exposure("color", blue, time=t - 1, user={"userID": "u1", "country": "DE"})])
    ingest.post([exposure("color", red, time=t - 1, user={"userID": "u1", "country": "IT"})])  # a tie changes nothing

    [unit] = ingest.units()
    assert (unit["variant_id"], unit["first_exposure_ms"]) == (blue, t - 1)
    assert unit["features"] == {"userID": "u1", "country": "DE"}


def test_earliest_exposure_within_one_batch_wins(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    t = ingest.now - MINUTE_MS

    ingest.post(
        [exposure("color", red, time=t), exposure("color", blue, time=t - 10), exposure("color", red, time=t - 5)]
    )

    [unit] = ingest.units()
    assert (unit["variant_id"], unit["first_exposure_ms"]) == (blue, t - 10)


def test_not_analysable_exposures_are_stored_with_a_reason_but_make_no_unit(ingest: Ingest) -> None:
    running = create_autotune(ingest.app, "color")
    create_autotune(ingest.app, "drafty", start=False)
    red = running.definition.variants[0].id
    t = ingest.now

    response = ingest.post(
        [
            exposure("color", "prestart", time=t),
            exposure("nope", "whatever", time=t),
            exposure("drafty", "prestart", time=t, version="0"),
            exposure("drafty", red, time=t, version="0"),
            exposure("color", red, user={"email": "a@b.c"}, time=t),
            exposure("color", "not_a_variant", time=t),
            exposure("color", red + ":override", time=t, user={"userID": "vip"}),
        ]
    )

    assert response.json()["accepted"] == 7
    assert ingest.units() == []
    reasons = sorted((row["autotune_id"], row["reason"], row["analysable"]) for row in ingest.exposures())
    assert reasons == sorted(
        [
            ("color", "prestart", False),
            ("nope", "unknown_config", False),
            ("drafty", "prestart", False),
            ("drafty", "draft", False),
            ("color", "no_unit_id", False),
            ("color", "unknown_variant", False),
            ("color", "override", False),
        ]
    )


def test_explore_suffix_is_stripped_and_flagged(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    blue = autotune.definition.variants[1].id

    ingest.post([exposure("color", blue + ":explore", time=ingest.now, isManualExposure="true")])

    [unit] = ingest.units()
    assert (unit["variant_id"], unit["explore"]) == (blue, True)
    [raw] = ingest.exposures()
    assert (raw["rule_id"], raw["variant_id"], raw["explore"]) == (blue + ":explore", blue, True)


def test_exposures_of_a_previous_run_or_after_the_decision_make_no_unit(ingest: Ingest) -> None:
    app = ingest.app
    autotune = create_autotune(app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    app.clock.advance(HOUR_MS)
    autotunes.make_decision(app.db, app.clock, ACTOR, "color", blue, "enough")  # allocation version 2
    app.clock.advance(HOUR_MS)
    autotunes.reset(app.db, app.clock, ACTOR, "color")  # run 2, allocation version 3
    t = app.clock.now_ms()

    ingest.post(
        [
            exposure("color", red, time=t, version="1", user={"userID": "old"}),
            exposure("color", blue, time=t, version="2", user={"userID": "decided"}),
            exposure("color", red, time=t, version="3", user={"userID": "new"}),
            exposure("color", blue, time=t, version=None, user={"userID": "unversioned"}),
        ]
    )

    assert [(u["unit_id"], u["run"]) for u in ingest.units()] == [("new", 2), ("unversioned", 2)]
    reasons = {row["unit_id"]: (row["run"], row["reason"]) for row in ingest.exposures()}
    assert reasons == {
        "old": (1, "previous_run"),
        "decided": (1, "previous_run"),
        "new": (2, ""),
        "unversioned": (2, ""),
    }


def test_exposures_after_a_winner_are_not_analysed(ingest: Ingest) -> None:
    app = ingest.app
    autotune = create_autotune(app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    before = app.clock.now_ms()
    app.clock.advance(HOUR_MS)
    autotunes.make_decision(app.db, app.clock, ACTOR, "color", blue, "enough")

    ingest.post(
        [
            exposure("color", red, time=before, version="1", user={"userID": "late_report"}),
            exposure("color", blue, time=app.clock.now_ms(), version="2", user={"userID": "after"}),
            exposure("color", blue, time=app.clock.now_ms(), version=None, user={"userID": "after_unversioned"}),
        ]
    )

    assert [u["unit_id"] for u in ingest.units()] == ["late_report"]
    reasons = {row["unit_id"]: row["reason"] for row in ingest.exposures()}
    assert reasons == {"late_report": "", "after": "finished", "after_unversioned": "finished"}


def test_the_facts_cache_follows_lifecycle_changes(ingest: Ingest) -> None:
    app = ingest.app
    autotune = create_autotune(app, "color", start=False)
    red = autotune.definition.variants[0].id
    ingest.post([exposure("color", red, time=ingest.now, version="0", user={"userID": "a"})])
    autotunes.start(app.db, app.clock, ACTOR, "color")

    ingest.post([exposure("color", red, time=ingest.now, version="1", user={"userID": "b"})])

    assert [u["unit_id"] for u in ingest.units()] == ["b"]
