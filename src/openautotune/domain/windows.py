"""Parsing of the Console API's window and threshold strings: the one place these facts live."""

from __future__ import annotations

from openautotune.domain.errors import InvalidInput

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

EXPLORATION_HOURS = (1, 24, 48, 168, 336)
ATTRIBUTION_NUMBERS = (1, 2, 4, 24)
ATTRIBUTION_UNITS: dict[str, int] = {"min": MINUTE_MS, "hour": HOUR_MS, "day": DAY_MS}
WINNER_THRESHOLDS: dict[str, float] = {"80%": 0.80, "90%": 0.90, "95%": 0.95, "98%": 0.98, "99%": 0.99}


def _spellings(numbers: tuple[int, ...]) -> tuple[str, ...]:
    # Statsig accepts "24", "24hr" and "24hrs" as aliases of one window.
    return tuple(f"{n}{suffix}" for suffix in ("hr", "", "hrs") for n in numbers)


EXPLORATION_WINDOWS = _spellings(EXPLORATION_HOURS)
ATTRIBUTION_WINDOWS = _spellings(ATTRIBUTION_NUMBERS)


def _number(text: str) -> int:
    return int(text.removesuffix("hrs").removesuffix("hr"))


def exploration_window_ms(window: str) -> int:
    """Milliseconds of an exploration window such as `"24hr"`."""
    if window not in EXPLORATION_WINDOWS:
        raise InvalidInput.field("explorationWindow", f"must be one of {', '.join(EXPLORATION_WINDOWS)}")
    return _number(window) * HOUR_MS


def attribution_window_ms(window: str, unit: str | None) -> int:
    """Milliseconds of an attribution window: its number read in `unit` (default hours)."""
    if window not in ATTRIBUTION_WINDOWS:
        raise InvalidInput.field("attributionWindow", f"must be one of {', '.join(ATTRIBUTION_WINDOWS)}")
    unit_ms = ATTRIBUTION_UNITS.get(unit or "hour")
    if unit_ms is None:
        raise InvalidInput.field("attributionWindowUnit", f"must be one of {', '.join(ATTRIBUTION_UNITS)}")
    return _number(window) * unit_ms


def winner_threshold(threshold: str) -> float:
    """The probability of best needed to declare a winner, e.g. `"95%"` -> 0.95."""
    try:
        return WINNER_THRESHOLDS[threshold]
    except KeyError:
        raise InvalidInput.field("winnerThreshold", f"must be one of {', '.join(WINNER_THRESHOLDS)}") from None
