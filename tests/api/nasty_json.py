"""JSON text a careless client or an attacker sends, as Hypothesis strategies (raw text, not Python values:
lone surrogates, 2^70 and 4,000-digit integers, 1e400 and 1,000-level nesting cannot be built with a
Python encoder, and are exactly what the hardening issue (#12) found to break the service).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Values no JSON encoder downstream can take: each one broke an endpoint once (issue #12, items 1-5).
EXTREME_NUMBERS = (
    str(2**64),
    str(2**70),
    str(-(2**70)),
    "9" * 4000,
    "1e400",
    "-1e400",
    "1" + "0" * 400 + ".5",
    "NaN",
    "Infinity",
    "-0.0",
    str(2**63 - 1),
    str(-(2**63)),
)
EXTREME_STRINGS = (r'"\ud800"', r'"\udfff x"', r'"a\u0000b"', r'"\ud83d\ude00"', '"' + "x" * 70_000 + '"')


def deep(depth: int, leaf: str = "1") -> str:
    """`depth` levels of alternating objects and lists around `leaf`."""
    return (
        "".join('{"d":' if level % 2 else "[" for level in range(depth))
        + leaf
        + "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    )


strings = st.text(max_size=12).map(json.dumps) | st.sampled_from(EXTREME_STRINGS)
numbers = (
    st.integers(-(2**80), 2**80).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.sampled_from(EXTREME_NUMBERS)
)
scalars = st.sampled_from(["null", "true", "false"]) | numbers | strings
deeply_nested = st.builds(deep, st.sampled_from([30, 64, 200, 255, 256, 600, 1023, 1500]), scalars)


def _containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    lists = st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
    objects = st.lists(st.tuples(strings, inner), max_size=4).map(
        lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
    )
    return lists | objects


# What broke the service, drawn about as often as everything else together: a few dozen examples find it.
extremes = st.sampled_from(EXTREME_NUMBERS + EXTREME_STRINGS) | deeply_nested
values = extremes | st.recursive(scalars, _containers, max_leaves=10)
ids = strings | numbers | extremes


def json_object(
    required: dict[str, st.SearchStrategy[str]], optional: dict[str, st.SearchStrategy[str]] | None = None
) -> st.SearchStrategy[str]:
    """An object text with every `required` field, some `optional` ones and maybe a stray key (each field
    a strategy of value texts): mostly the right shape, so that requests get past the envelope."""
    return st.fixed_dictionaries(required, optional={**(optional or {}), '"stray"': values}).map(
        lambda chosen: "{" + ",".join(f"{_key(name)}:{value}" for name, value in chosen.items()) + "}"
    )


def _key(name: str) -> str:
    return name if name.startswith('"') else json.dumps(name)


user_objects = json_object(
    {"userID": ids},
    {
        "customIDs": json_object({}, {"stableID": ids, "companyID": ids}) | values,
        "country": strings,
        "custom": values,
        "privateAttributes": values,
        "statsigEnvironment": json_object({"tier": ids}) | values,
    },
)
users = user_objects | user_objects | values

_MARK = "\u0000planted\u0000"


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in `value` a planted value can go: each member, and a new key in each object."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        found.append((*prefix, "planted"))
        for key, member in value.items():
            found += [(*prefix, key), *_paths(member, (*prefix, key))]
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found += [(*prefix, index), *_paths(member, (*prefix, index))]
    return found


def _plant(template: Any, path: tuple[str | int, ...], text: str) -> str:
    copy = json.loads(json.dumps(template))
    holder = copy
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = _MARK
    return json.dumps(copy).replace(json.dumps(_MARK), text)


def planted(template: Any) -> st.SearchStrategy[str]:
    """`template` (a valid request) as JSON text with one member replaced, or one key added, by a nasty
    value: the request gets past every check but one, which is where a 500 hides."""
    return st.builds(_plant, st.just(template), st.sampled_from(_paths(template)), values)


def every_planting(template: Any) -> list[tuple[str, str]]:
    """(what, text) for each extreme value at each place of `template`: the exhaustive table of the
    values that broke the service, where random generation would take thousands of examples."""
    extremes = [*EXTREME_NUMBERS, *EXTREME_STRINGS, *(deep(depth) for depth in (255, 256, 1023, 1500))]
    return [
        (f"{_label(value)} at {'.'.join(map(str, path))}", _plant(template, path, value))
        for path in _paths(template)
        for value in extremes
    ]


def _label(value: str) -> str:
    if value.startswith(("[", "{")):
        return f"{value.count('[') + value.count('{')} levels"
    return value if len(value) <= 24 else f"{value[:12]}... ({len(value)} chars)"
