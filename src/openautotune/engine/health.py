"""The health checks of one update (engine.md, "Health"): sample ratio and guardrails.

Called by `engine.update` inside the update's transaction, after the weights and the winner are
known. It reads what the store keeps (the cumulative aggregates, the allocations every period
published, the guardrail sums), runs the statistics (`stats.srm`, `stats.guardrails`), and returns
the record's `health` part together with the variants the guardrails exclude from traffic.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.contextual.training import ExploreTraffic
from openautotune.domain.autotune import Autotune, Definition
from openautotune.domain.guardrails import Guardrail
from openautotune.engine.contextual_srm import SCOPE as CONTEXTUAL_SCOPE
from openautotune.engine.contextual_srm import explore_counts
from openautotune.stats.estimators import VariantAggregate, merge_strata, period_weighted, pool
from openautotune.stats.guardrails import HARM_PROBABILITY, check_guardrail
from openautotune.stats.srm import shares_from_thresholds, srm_test
from openautotune.store import health as health_store
from openautotune.store import updates
from openautotune.store.attribution import Aggregate, matured_aggregates
from openautotune.store.event_store import EventStore

DEFAULT_SRM_THRESHOLD = 0.001
SRM_CAUSES = (
    "exposures lost or never logged for some variants (a client that crashes, redirects or logs before "
    "the variant renders), bots or filters that drop units unevenly, SDKs serving a stale or cached "
    "assignment, or traffic forced around the bucketing (overrides, targeting)"
)


@dataclass(frozen=True)
class HealthOptions:
    """Server settings the checks read (docs/configuration.md)."""

    srm_threshold: float = DEFAULT_SRM_THRESHOLD


@dataclass(frozen=True)
class HealthReport:
    record: dict[str, Any]
    excluded: tuple[int, ...] = ()
    """Variants out of traffic (held at the long-term floor)."""
    flagged: tuple[int, ...] = ()
    """Variants with P(harm) >= 95% now but no always-valid evidence yet: they keep their traffic,
    but cannot be declared the winner until the flag clears."""
    reasons: tuple[str, ...] = field(default=())

    @property
    def may_not_win(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.excluded) | set(self.flagged)))


def _previous_health(conn: Connection, key: updates.RunKey) -> dict[str, Any]:
    """The `health` part of the run's latest update record (empty before the first)."""
    record = updates.latest_record(conn, key.autotune_id, key.incarnation_ms, key.run)
    health = record.record.get("health") if record is not None else None
    return health if isinstance(health, dict) else {}


def _previous_srm_p(previous: dict[str, Any]) -> float:
    """The running minimum the look-corrected p-value keeps (1 before the run's first check)."""
    value = (previous.get("srm") or {}).get("pValue")
    return float(value) if isinstance(value, int | float) else 1.0


def _rule_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("event"), entry.get("value"), entry.get("higherIsBetter"), entry.get("maxRelativeHarm"))


def _previously_excluded(previous: dict[str, Any]) -> dict[tuple[Any, ...], set[str]]:
    """Exclusions last for the run, per guardrail rule: changing its harm or direction re-judges it."""
    return {
        _rule_key(entry): set(entry.get("excluded") or ())
        for entry in previous.get("guardrails") or ()
        if isinstance(entry, dict)
    }


def _srm_warning(test_observed: Sequence[int], expected: Sequence[float], names: Sequence[str], p: float) -> str:
    shortfalls = [
        (observed / e - 1.0, name, observed, e)
        for observed, e, name in zip(test_observed, expected, names, strict=True)
        if e > 0
    ]
    if shortfalls:
        # The largest relative deviation; on a tie the shortfall, since lost exposures are the usual cause.
        deviation, name, observed, e = max(shortfalls, key=lambda item: (round(abs(item[0]), 9), item[0] < 0))
        where = (
            f"'{name}' has {abs(deviation):.1%} {'fewer' if deviation < 0 else 'more'} units than its published "
            f"weights predict ({observed:,} observed, {e:,.0f} expected)"
        )
    else:
        where = "units arrived for variants whose published weight was 0"
    return f"Sample ratio mismatch (p = {p:.2g}): {where}. The results may be biased. Likely causes: {SRM_CAUSES}."


def srm_record(
    conn: Connection, autotune: Autotune, cumulative: Sequence[Aggregate], threshold: float, previous_p: float
) -> dict[str, Any]:
    """`health.srm`: the check over every period of the run whose published split is known."""
    variants = autotune.definition.variants
    position = {variant.id: k for k, variant in enumerate(variants)}
    published = health_store.allocations_by_version(conn, autotune.id, {item.period for item in cumulative})
    rows: dict[int, list[int]] = {}
    unattributed = 0
    for item in cumulative:
        split = published.get(item.period)
        k = position.get(item.variant_id)
        if k is None or split is None or split.run != autotune.run or len(split.thresholds) != len(variants):
            unattributed += item.units  # no known split to hold it against (no or an unknown specs version)
            continue
        rows.setdefault(item.period, [0] * len(variants))[k] += item.units
    shares = {p: shares_from_thresholds(published[p].thresholds) for p in rows}
    return _srm_result(autotune, rows, shares, unattributed, threshold, previous_p)


def _srm_result(
    autotune: Autotune,
    rows: dict[int, list[int]],
    shares_by_period: dict[int, tuple[float, ...]],
    unattributed: int,
    threshold: float,
    previous_p: float,
    *,
    with_counts: bool = False,
) -> dict[str, Any]:
    """The record of the check over `rows` (units per period and variant) against each period's shares."""
    variants = autotune.definition.variants
    names = [variant.name for variant in variants]
    periods = sorted(rows)
    shares = [shares_by_period[p] for p in periods]
    test = srm_test([rows[p] for p in periods], shares)
    base: dict[str, Any] = {
        "threshold": threshold,
        "observed": list(test.observed) or [0] * len(variants),
        "expected": list(test.expected) or [0.0] * len(variants),
        "chiSquare": test.chi_square,
        "df": test.df,
        "fixedPValue": test.fixed_p_value,
        "unattributedUnits": unattributed,
        "periods": [
            {"period": p, "shares": list(s), **({"observed": rows[p]} if with_counts else {})}
            for p, s in zip(periods, shares, strict=True)
        ],
    }
    if test.sequential_p_value is None:
        return {"pValue": None, **base, "warning": None}
    p_value = min(previous_p, test.sequential_p_value)
    warning = _srm_warning(test.observed, test.expected, names, p_value) if p_value < threshold else None
    return {"pValue": p_value, **base, "warning": warning}


def contextual_srm_record(
    conn: Connection,
    autotune: Autotune,
    previous: dict[str, Any],
    traffic: ExploreTraffic | None,
    threshold: float,
) -> dict[str, Any]:
    """`health.srm` of a contextual autotune: the same check on its explore traffic (engine/contextual_srm.py)."""
    counts = explore_counts(conn, autotune, previous, traffic)
    previous_p = _previous_srm_p(previous)
    record = _srm_result(
        autotune, counts.rows, counts.shares, counts.unattributed, threshold, previous_p, with_counts=True
    )
    if record["warning"] is not None:
        record["warning"] = record["warning"].replace("published weights", "published explore weights")
    return {**record, "traffic": "explore", "untestedUnits": counts.untested, "scope": CONTEXTUAL_SCOPE}


def _as_outcome(definition: Definition, guardrail: Guardrail) -> Definition:
    """The definition whose "success" is the guardrail event: attribution's query, unchanged."""
    return replace(
        definition,
        success_event=guardrail.event,
        success_event_value=guardrail.value or "",
        optimization_parameter="occurrence",
        metadata_field=None,
    )


def _guardrail_cells(variant_ids: Sequence[str], cumulative: Sequence[Aggregate]) -> list[list[VariantAggregate]]:
    position = {variant_id: k for k, variant_id in enumerate(variant_ids)}
    cells: dict[int, list[VariantAggregate]] = {}
    for item in cumulative:
        k = position.get(item.variant_id)
        if k is None:
            continue
        row = cells.setdefault(item.period, [VariantAggregate(0)] * len(variant_ids))
        row[k] = row[k] + VariantAggregate(item.units, item.successes)
    return [cells[p] for p in sorted(cells)]


def guardrail_records(
    conn: Connection,
    autotune: Autotune,
    key: updates.RunKey,
    matured_after_ms: int,
    as_of_ms: int,
    *,
    pooled: bool,
    earlier: dict[tuple[Any, ...], set[str]] | None = None,
    events: EventStore | None = None,
) -> list[tuple[dict[str, Any], tuple[int, ...]]]:
    """Each guardrail's record and the variants it excludes (adding this update's units first): those
    it finds harmful now, and those it excluded at an earlier update of the run (`earlier`). The new
    units are read from `events` when units and events live in another store (ClickHouse); the sums
    carried from update to update stay in the main database."""
    definition = autotune.definition
    read = functools.partial(matured_aggregates, conn) if events is None else events.matured_aggregates
    variants = definition.variants
    variant_ids = [variant.id for variant in variants]
    results: list[tuple[dict[str, Any], tuple[int, ...]]] = []
    for guardrail in definition.guardrails:
        event, value = guardrail.key
        new = read(
            autotune_id=autotune.id,
            run=autotune.run,
            definition=_as_outcome(definition, guardrail),
            matured_after_ms=matured_after_ms,
            as_of_ms=as_of_ms,
        )
        health_store.add_guardrail(conn, key, event, value, new)
        periods = _guardrail_cells(variant_ids, health_store.guardrail_cumulative(conn, key, event, value))
        totals = pool(periods, len(variants)) if periods else [VariantAggregate(0)] * len(variants)
        entry: dict[str, Any] = {
            "event": guardrail.event,
            "value": guardrail.value,
            "higherIsBetter": guardrail.higher_is_better,
            "maxRelativeHarm": guardrail.max_relative_harm,
        }
        before = (earlier or {}).get(_rule_key(entry), set())
        kept = tuple(k for k, variant_id in enumerate(variant_ids) if variant_id in before)
        if not periods or any(cell.units == 0 for cell in totals):
            # Nothing to compare yet (or a variant without units): reported, never judged.
            entry.update(
                reference=None,
                variants=_variant_rows(variants, totals, None),
                excluded=[variant_ids[k] for k in kept],
            )
            results.append((entry, kept))
            continue
        strata = [totals] if pooled else merge_strata(periods)
        estimates = period_weighted(strata, occurrence=True)
        check = check_guardrail(
            [e.mean for e in estimates],
            [e.variance for e in estimates],
            [int(cell.units) for cell in totals],
            [int(cell.successes) for cell in totals],
            higher_is_better=guardrail.higher_is_better,
            max_relative_harm=guardrail.max_relative_harm,
        )
        excluded = tuple(sorted(set(check.harmful) | set(kept)))
        entry.update(
            reference=variant_ids[check.reference] if check.reference is not None else None,
            variants=_variant_rows(variants, totals, check),
            excluded=[variant_ids[k] for k in excluded],
        )
        results.append((entry, excluded))
    return results


def _variant_rows(variants: Sequence[Any], totals: Sequence[VariantAggregate], check: Any) -> list[dict[str, Any]]:
    rows = []
    for k, (variant, cell) in enumerate(zip(variants, totals, strict=True)):
        judged = check.variants[k] if check is not None else None
        rows.append(
            {
                "id": variant.id,
                "name": variant.name,
                "units": cell.units,
                "hits": cell.successes,
                "mean": judged.mean if judged is not None else (cell.successes / cell.units if cell.units else 0.0),
                "probabilityOfHarm": judged.probability_of_harm if judged is not None else None,
                "logEvidence": judged.log_evidence if judged is not None else None,
                "harmful": judged.harmful if judged is not None else False,
            }
        )
    return rows


def check_health(
    conn: Connection,
    autotune: Autotune,
    key: updates.RunKey,
    cumulative: Sequence[Aggregate],
    matured_after_ms: int,
    as_of_ms: int,
    options: HealthOptions,
    *,
    pooled: bool,
    events: EventStore | None = None,
    explore_traffic: ExploreTraffic | None = None,
) -> HealthReport:
    """The update record's `health` part and the variants to exclude from traffic (`events`: where units
    and events live when not in the main database; `explore_traffic`: a contextual autotune's newly
    matured explore units, for its sample-ratio check)."""
    definition = autotune.definition
    previous = _previous_health(conn, key)
    if definition.is_contextual:
        srm = contextual_srm_record(conn, autotune, previous, explore_traffic, options.srm_threshold)
    else:
        srm = srm_record(conn, autotune, cumulative, options.srm_threshold, _previous_srm_p(previous))
    checked = guardrail_records(
        conn,
        autotune,
        key,
        matured_after_ms,
        as_of_ms,
        pooled=pooled,
        earlier=_previously_excluded(previous),
        events=events,
    )
    names = [variant.name for variant in definition.variants]
    harmful: dict[int, list[str]] = {}
    suspect: dict[int, list[str]] = {}
    for entry, flagged in checked:
        for k, row in enumerate(entry["variants"]):
            p = row["probabilityOfHarm"]
            if k not in flagged and p is not None and p >= HARM_PROBABILITY:
                suspect.setdefault(k, []).append(
                    f"guardrail '{entry['event']}' is worse than '{_name(entry, names)}' by more than "
                    f"{entry['maxRelativeHarm']:.0%} with probability {p:.3f}"
                )
        for k in flagged:
            row = entry["variants"][k]
            if not row["harmful"]:
                harmful.setdefault(k, []).append(
                    f"guardrail '{entry['event']}' excluded it at an earlier update (exclusions last for the run)"
                )
                continue
            harmful.setdefault(k, []).append(
                f"guardrail '{entry['event']}' is worse than '{_name(entry, names)}' by more than "
                f"{entry['maxRelativeHarm']:.0%} with probability {row['probabilityOfHarm']:.3f} >= "
                f"{HARM_PROBABILITY:g}, and the always-valid test agrees"
            )
    reasons = [f"'{names[k]}' excluded from traffic: " + "; ".join(why) for k, why in sorted(harmful.items())]
    excluded = tuple(sorted(harmful))
    flagged = tuple(k for k in sorted(suspect) if k not in harmful)
    reasons += [
        f"'{names[k]}' flagged, may not be declared the winner: "
        + "; ".join(suspect[k])
        + " (not excluded until the always-valid test agrees)"
        for k in flagged
    ]
    if len(excluded) == len(names):
        reasons.append("every variant is harmful on some guardrail, so none is excluded: review the guardrails")
        excluded = ()
    elif excluded and definition.is_contextual:
        reasons.append(
            "contextual autotune: the excluded variants are withheld from the personalized policy (the SDK "
            "entry no longer lists them, the server never chooses them; long-term floor 0)"
        )
    record = {
        "srm": srm,
        "guardrails": [entry for entry, _ in checked],
        "excluded": [definition.variants[k].id for k in excluded],
        "flagged": [definition.variants[k].id for k in flagged],
        "reasons": reasons,
    }
    return HealthReport(record=record, excluded=excluded, flagged=flagged, reasons=tuple(reasons))


def _name(entry: dict[str, Any], names: Sequence[str]) -> str:
    reference = entry.get("reference")
    for row, name in zip(entry.get("variants", []), names, strict=False):
        if row.get("id") == reference:
            return name
    return str(reference)
