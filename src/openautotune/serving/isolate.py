"""Which autotunes cannot be served, so one bad row never takes the specs of every other one down.

Rows are validated before they are written, but a row written before a rule existed, or by hand,
may still hold what no SDK document can carry (a lone surrogate, an integer beyond 64 bits, a shape
the evaluator refuses). When the whole documents fail to render, each autotune is rendered alone,
exactly as it would be in them (v1 and v2, validated, compiled for `/v1/get_config`, encoded): the
ones that fail are left out of what is published and reported, and everything else is served as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.cmab import Pair, cmab_configs
from openautotune.serving.evaluate import Evaluator
from openautotune.serving.validate import validate_v1, validate_v2

# Any time works: the documents rendered here are thrown away.
_TIME_MS = 1


def render_problem(pair: Pair, policies: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why this one autotune cannot be published (None when it can)."""
    one = [pair]
    try:
        v1 = specs_v1.render(one, _TIME_MS)
        validate_v1(v1)
        Evaluator.from_specs(v1)
        v2 = specs_v2.render(one, _TIME_MS, cmab_configs(one, policies))
        validate_v2(v2)
        orjson.dumps(v1)
    # Deliberately broad: whatever one row makes the renderer raise must not reach the others.
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def unrenderable(pairs: Sequence[Pair], policies: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Autotune id -> why it cannot be published, for every autotune of `pairs` that cannot."""
    problems: dict[str, str] = {}
    for pair in pairs:
        problem = render_problem(pair, policies)
        if problem is not None:
            problems[pair[0].id] = problem
    return problems
