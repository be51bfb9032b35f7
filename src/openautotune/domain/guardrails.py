"""Guardrail metrics an autotune must not harm (Console API extension `guardrails`; engine.md, "Health")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from openautotune.domain.errors import FieldProblem
from openautotune.domain.json_limits import JsonProblem, check_text

MAX_GUARDRAILS = 10
MAX_HARM = 10.0
"""At most +1000% for a lower-is-better guardrail; a higher-is-better one allows less than 100%."""
MAX_EVENT = 256  # the longest event name ingestion keeps (domain.field_limits.MAX_IDENTIFIER)


@dataclass(frozen=True)
class Guardrail:
    """A unit "hits" the guardrail when it has an `event` (whose value equals `value`, when set) in
    its attribution window; the engine compares the variants' hit rates."""

    event: str
    max_relative_harm: float
    higher_is_better: bool = False
    value: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a guardrail's data: its event and value (the harm and direction are rules)."""
        return (self.event, self.value or "")


def guardrail_problems(guardrails: Sequence[Guardrail]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if len(guardrails) > MAX_GUARDRAILS:
        return [FieldProblem("guardrails", f"An autotune has at most {MAX_GUARDRAILS} guardrails")]
    seen: set[tuple[str, str]] = set()
    for index, guardrail in enumerate(guardrails):
        where = f"guardrails[{index}]"
        if not guardrail.event.strip():
            problems.append(FieldProblem(f"{where}.event", "must not be empty"))
        for text, path in ((guardrail.event, f"{where}.event"), (guardrail.value, f"{where}.value")):
            if text is None:
                continue
            try:  # valid Unicode, no NUL, at most 256 characters: what every stored text field obeys
                check_text(text, path, MAX_EVENT)
            except JsonProblem as problem:
                problems.append(FieldProblem(problem.path, problem.message))
        harm = guardrail.max_relative_harm
        # Higher is better: a harm of 1 (100%) would allow a rate of 0, so it must stay below 1.
        within = harm < 1.0 if guardrail.higher_is_better else harm <= MAX_HARM
        if not (math.isfinite(harm) and harm >= 0.0 and within):
            bound = "below 1 when higher is better" if guardrail.higher_is_better else f"at most {MAX_HARM:g}"
            problems.append(FieldProblem(f"{where}.maxRelativeHarm", f"must be at least 0 and {bound}"))
        if guardrail.key in seen:
            problems.append(FieldProblem(where, f"guardrail event {guardrail.event!r} is listed twice"))
        seen.add(guardrail.key)
    return problems


def guardrails_from_json(items: object) -> tuple[Guardrail, ...]:
    """Guardrails as stored with a definition (dataclass fields); anything else reads as none."""
    if not isinstance(items, list | tuple):
        return ()
    return tuple(Guardrail(**item) for item in items if isinstance(item, dict))
