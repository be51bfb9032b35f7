"""Budgets as settings spell them: `100/10s,900/15m` (count per window), or `off`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000}
_ONE = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{0,6})\s*([smh])\s*$")
OFF = frozenset({"", "off", "none", "0"})


@dataclass(frozen=True)
class Budget:
    """At most `limit` requests in any `window_ms`."""

    limit: int
    window_ms: int


def parse_budgets(text: str, setting: str) -> tuple[Budget, ...]:
    """`"100/10s,900/15m"` -> two budgets; `off` -> none. A malformed value is a ValueError naming the
    setting, so a typo stops the server at start instead of silently leaving it unprotected."""
    if text.strip().lower() in OFF:
        return ()
    budgets = []
    for part in text.split(","):
        match = _ONE.match(part)
        if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
            raise ValueError(f"{setting}: {part.strip()!r} is not a budget like 100/10s (count/window in s, m or h)")
        count, amount, unit = match.groups()
        budgets.append(Budget(limit=int(count), window_ms=int(amount or 1) * _UNITS_MS[unit]))
    return tuple(budgets)
