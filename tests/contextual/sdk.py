"""The core SDK's CMAB scoring rule, written from sdk-core-protocol.md and from probing the real SDK
(`statsig-python-core` 0.24.2, see tests/e2e/test_contextual_weights_core.py), not from the encoder.

``score = intercept + alpha + sum_f weightsCategorical[f][str(user[f])] + sum_f weightsNumerical[f] *
float(user[f])``; feature values from the top-level fields userID, email, ip, country, locale,
appVersion, userAgent (name matched case-insensitively), then ``custom[f]``, then ``custom[f.lower()]``;
numeric strings count as numbers; numbers as category strings in shortest positional form (3.0 -> "3");
a missing feature, an unparsable number or an unseen category adds 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

TOP_LEVEL = {name.lower() for name in ("userID", "email", "ip", "country", "locale", "appVersion", "userAgent")}


def lookup(user: Mapping[str, Any], feature: str) -> Any:
    wanted = feature.lower()
    if wanted in TOP_LEVEL:
        for key, value in user.items():
            if key.lower() == wanted and value not in (None, ""):
                return value
    custom = user.get("custom") or {}
    value = custom[feature] if feature in custom else custom.get(wanted)
    if value in (None, "") or isinstance(value, (list, dict)):
        return None
    return value


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value
        if (
            not text
            or not text.isascii()
            or text != text.strip()
            or "_" in text
            or text.lower().lstrip("+-") in ("nan", "inf", "infinity")
        ):
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        number = float(value)
    return number if math.isfinite(number) else None


def as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def sdk_score(group: Mapping[str, Any], user: Mapping[str, Any]) -> float:
    """The score the SDK gives ``user`` for one group of ``cmab_configs[...].config``."""
    score = float(group["intercept"]) + float(group["alpha"])
    for feature, by_value in group["weightsCategorical"].items():
        value = lookup(user, feature)
        if value is not None:
            score += float(by_value.get(as_string(value), 0.0))
    for feature, weight in group["weightsNumerical"].items():
        number = as_float(lookup(user, feature))
        if number is not None:
            score += float(weight) * number
    return score
