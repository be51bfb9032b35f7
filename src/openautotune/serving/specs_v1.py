"""Config specs v1 (`/v1/download_config_specs`), the document the legacy `statsig` SDK reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openautotune.domain.autotune import Allocation, Autotune
from openautotune.serving.entries import Json, config_entry

Pair = tuple[Autotune, Allocation | None]

# Zeroed sampling rates stop the SDKs from sending `statsig::diagnostics` events.
DIAGNOSTICS: dict[str, int] = {"initialize": 0, "dcs": 0, "idlist": 0, "logevent": 0, "api_call": 0}
NO_UPDATES: dict[str, Any] = {"has_updates": False}


def render(pairs: Sequence[Pair], time_ms: int) -> Json:
    """The whole v1 document for `pairs` of (autotune, its latest allocation or None)."""
    return {
        "has_updates": True,
        "time": time_ms,
        "feature_gates": [],
        "dynamic_configs": [config_entry(autotune, allocation) for autotune, allocation in pairs],
        "layer_configs": [],
        "layers": {},
        "sdk_flags": {},
        "sdk_configs": {},
        "diagnostics": dict(DIAGNOSTICS),
    }
