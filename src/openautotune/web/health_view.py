"""The health card (sample ratio, guardrails) as text and rows, from the results' `health` part.

Shared by the dashboard's template (`_health.html`) and `openautotune results`, so both say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openautotune.web.templating import format_percent


@dataclass(frozen=True)
class SrmRow:
    name: str
    observed: int
    expected: float
    deviation: str


@dataclass(frozen=True)
class GuardrailRow:
    name: str
    units: int
    hits: int
    rate: str
    harm: str
    status: str
    """ok, reference, flagged or excluded."""


@dataclass(frozen=True)
class GuardrailView:
    label: str
    rule: str
    rows: tuple[GuardrailRow, ...]


@dataclass(frozen=True)
class HealthView:
    srm_status: str
    """ok, warning, pending (nothing to test yet) or unchecked."""
    srm_text: str
    srm_rows: tuple[SrmRow, ...]
    guardrails: tuple[GuardrailView, ...]
    reasons: tuple[str, ...]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _srm(srm: Mapping[str, Any], names: Sequence[str]) -> tuple[str, str, tuple[SrmRow, ...]]:
    observed, expected = srm.get("observed") or [], srm.get("expected") or []
    rows = []
    for name, seen, wanted in zip(names, observed, expected, strict=False):
        e = _number(wanted) or 0.0
        deviation = f"{(float(seen) / e - 1.0):+.1%}" if e > 0 else "—"
        rows.append(SrmRow(name, int(seen), e, deviation))
    p_value = _number(srm.get("pValue"))
    if srm.get("note"):
        return "unchecked", f"Sample ratio: {srm['note']}.", tuple(rows)
    # A contextual autotune is checked on its explore traffic only (engine/contextual_srm.py).
    explore = srm.get("traffic") == "explore"
    scope = (
        f" Explore traffic only: {int(srm.get('untestedUnits') or 0):,} exploit units are personalized and not tested."
        if explore
        else ""
    )
    if p_value is None:
        return (
            "pending",
            f"Sample ratio: no mature {'explore ' if explore else ''}units to check yet.{scope}",
            tuple(rows),
        )
    if srm.get("warning"):
        return "warning", str(srm["warning"]) + scope, tuple(rows)
    threshold = _number(srm.get("threshold"))
    limit = f" (warns below {threshold:g})" if threshold is not None else ""
    weights = "published explore weights" if explore else "published weights"
    return "ok", f"Sample ratio OK: p = {p_value:.3g}{limit}; units match the {weights}.{scope}", tuple(rows)


def _guardrail(entry: Mapping[str, Any], excluded: set[str], flagged: set[str]) -> GuardrailView:
    value = entry.get("value")
    label = str(entry.get("event", "")) + (f" (value = {value!r})" if value else "")
    harm = _number(entry.get("maxRelativeHarm")) or 0.0
    direction = "higher" if entry.get("higherIsBetter") else "lower"
    rule = f"{direction} is better; at most {harm:.0%} worse than the best"
    rows = []
    for item in entry.get("variants") or ():
        variant_id = item.get("id")
        status = "ok"
        if variant_id == entry.get("reference"):
            status = "reference"
        if variant_id in flagged:
            status = "flagged"
        if variant_id in excluded and variant_id in (entry.get("excluded") or ()):
            status = "excluded"
        p = _number(item.get("probabilityOfHarm"))
        rows.append(
            GuardrailRow(
                name=str(item.get("name", variant_id)),
                units=int(_number(item.get("units")) or 0),
                hits=int(_number(item.get("hits")) or 0),
                rate=format_percent(_number(item.get("mean")), 2),
                harm=format_percent(p) if p is not None else "—",
                status=status,
            )
        )
    return GuardrailView(label, rule, tuple(rows))


def health_view(health: Mapping[str, Any] | None, names: Sequence[str]) -> HealthView | None:
    """None before the first update of the run (there is nothing to show)."""
    if not isinstance(health, Mapping):
        return None
    status, text, rows = _srm(health.get("srm") or {}, names)
    excluded, flagged = set(health.get("excluded") or ()), set(health.get("flagged") or ())
    guardrails = tuple(_guardrail(entry, excluded, flagged) for entry in health.get("guardrails") or ())
    return HealthView(status, text, rows, guardrails, tuple(str(r) for r in health.get("reasons") or ()))
