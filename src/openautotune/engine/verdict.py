"""The one-sentence verdict of an autotune's results: what the rule decided, never more (engine.md, "Results")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openautotune.domain.autotune import Autotune, Stage, Status
from openautotune.stats.lift import EQUIVALENCE_MARGIN, Lift


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def verdict(
    autotune: Autotune,
    stage: Stage,
    record: Mapping[str, Any] | None,
    names: Sequence[str],
    pob: Sequence[float],
    lifts: Sequence[Lift | None],
) -> str:
    """One sentence for the results of ``autotune``'s current run, from its latest update ``record``."""
    if stage is Stage.DRAFT:
        return "Not started: nothing is analysed until the autotune starts."
    winner = autotune.winner
    decision = record.get("decision") if record is not None else None
    rule = record.get("winnerRule") if record is not None else None
    if autotune.status is Status.FINISHED and winner is not None:
        decided_by_engine = isinstance(decision, Mapping) and decision.get("winner") == winner.id
        if not decided_by_engine:
            return f"{winner.name!r} was chosen by hand (make_decision); the engine had not declared a winner."
        if isinstance(rule, Mapping) and rule.get("rule") == "statsig":
            return (
                f"{winner.name!r} was declared the winner by Statsig's rule (probability of being best reached the "
                "threshold at an hourly look; repeated looks make a false winner likelier than the threshold says)."
            )
        threshold = record.get("winnerThreshold") if record is not None else None
        error = f" (error at most {_percent(1.0 - float(threshold))})" if isinstance(threshold, int | float) else ""
        return (
            f"{winner.name!r} is the winner: its probability of being best reached the threshold and it beat every "
            f"other variant in a test that stays valid at every hourly look{error}."
        )
    if record is None or not names:
        return "No data analysed yet."
    diagnostics = record.get("diagnostics")
    if isinstance(diagnostics, Mapping) and diagnostics.get("enoughData") is False:
        return "Not enough data yet to compare the variants."
    leader = max(range(len(pob)), key=lambda k: pob[k])
    others = [lift for k, lift in enumerate(lifts) if k != leader]
    exploring = " (still exploring)" if stage is Stage.EXPLORING else ""
    if others and all(lift is not None and lift.within() for lift in others):
        return (
            f"No meaningful difference so far{exploring}: every variant is within "
            f"±{100 * EQUIVALENCE_MARGIN:.0f}% of {names[leader]!r} (95% intervals); no winner is declared."
        )
    return (
        f"{names[leader]!r} leads{exploring} with a {_percent(pob[leader])} probability of being best; "
        "the evidence does not yet support a winner."
    )
