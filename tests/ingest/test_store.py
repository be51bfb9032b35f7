"""Store-level pieces of ingestion that HTTP does not reach directly."""

from __future__ import annotations

from openautotune.store import ingest as ingest_store
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure


def test_forget_autotune_removes_its_exposures_and_units_only(ingest: Ingest) -> None:
    color = create_autotune(ingest.app, "color")
    other = create_autotune(ingest.app, "other")
    ingest.post(
        [
            exposure("color", color.definition.variants[0].id, time=ingest.now),
            exposure("other", other.definition.variants[0].id, time=ingest.now),
            custom_event("click", user={"userID": "u1"}, time=ingest.now),
        ]
    )

    with ingest.app.db.write() as conn:
        ingest_store.forget_autotune(conn, "color")

    assert [row["autotune_id"] for row in ingest.exposures()] == ["other"]
    assert [row["autotune_id"] for row in ingest.units()] == ["other"]
    assert len(ingest.events()) == 1
