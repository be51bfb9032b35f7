"""`record_exposures`: exposures the server serves itself (e.g. /v1/get_config) land like an SDK's."""

from __future__ import annotations

from openautotune.service.ingest import ExposureInput, record_exposures
from tests.ingest.conftest import Ingest, create_autotune, exposure


def test_server_side_exposures_make_units_with_their_propensity(ingest: Ingest) -> None:
    app = ingest.app
    autotune = create_autotune(app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    now = app.clock.now_ms()
    inputs = [
        ExposureInput("color", blue, {"userID": "u1", "country": "DE"}, now, 1, propensity=0.25),
        ExposureInput("color", red + ":explore", {"userID": "u2"}, now, 1),
        ExposureInput("color", "prestart", {"userID": "u3"}, now, 1),
        ExposureInput("color", red, {"userID": "u4"}, now + 2 * 86_400_000, 1),  # a day ahead: refused
    ]

    result = record_exposures(app.db, app.clock, inputs)

    assert (result.accepted, result.analysable, [r.index for r in result.rejected]) == (3, 2, [3])
    units = {u["unit_id"]: (u["variant_id"], u["propensity"], u["explore"], u["features"]) for u in ingest.units()}
    assert units == {
        "u1": (blue, 0.25, False, {"userID": "u1", "country": "DE"}),
        "u2": (red, None, True, {"userID": "u2"}),
    }
    # The same exposure logged again by an SDK (same user, rule, version and time) is not stored twice.
    ingest.post([exposure("color", blue, user={"userID": "u1", "country": "DE"}, time=now, version="1")])
    assert len(ingest.exposures()) == 3


def test_app_ingestor_is_shared_by_the_http_path(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red = autotune.definition.variants[0].id

    ingest.app.app.state.ingest.record_exposures([ExposureInput("color", red, {"userID": "u"}, ingest.now, 1)])

    assert [u["unit_id"] for u in ingest.units()] == ["u"]
