"""Golden files pin the exact config specs SDKs download (v1 and v2).

A change to a golden file is a change to the wire format: review it like one. To regenerate after
an intended change: `OPENAUTOTUNE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/serving/test_specs_golden.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.validate import validate_v1, validate_v2
from tests.serving.fixtures import T0, golden_pairs

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / name
    if os.environ.get("OPENAUTOTUNE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; regenerate only for an intended wire-format change"


def test_v1_golden() -> None:
    document = specs_v1.render(golden_pairs(), T0)
    validate_v1(document)
    check_golden("specs_v1.json", document)


def test_v2_golden() -> None:
    document = specs_v2.render(golden_pairs(), T0)
    validate_v2(document)
    check_golden("specs_v2.json", document)


def test_v2_is_v1_in_map_form() -> None:
    v1 = specs_v1.render(golden_pairs(), T0)
    v2 = specs_v2.render(golden_pairs(), T0)
    for entry in v1["dynamic_configs"]:
        spec = v2["dynamic_configs"][entry["name"]]
        assert {k: v for k, v in entry.items() if k not in ("name", "rules")} == {
            k: v for k, v in spec.items() if k != "rules"
        }
        for rule, mapped in zip(entry["rules"], spec["rules"], strict=True):
            assert [v2["condition_map"][key] for key in mapped["conditions"]] == rule["conditions"]


@pytest.mark.parametrize("later", [T0 + 1, T0 + 3_600_000])
def test_checksum_changes_with_time_and_content(later: int) -> None:
    pairs = golden_pairs()
    first = specs_v2.render(pairs, T0)["checksum"]
    assert specs_v2.render(pairs, T0)["checksum"] == first
    assert specs_v2.render(pairs, later)["checksum"] != first
    assert specs_v2.render(pairs[:-1], T0)["checksum"] != first
    assert first.isascii() and first.isalnum()
