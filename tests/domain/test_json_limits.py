"""The one JSON reader with limits: every value it lets through can be stored and re-encoded by orjson."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openautotune.domain.json_limits import (
    JsonLimits,
    JsonProblem,
    check_json,
    check_text,
    load_lenient,
    parse_json,
    parse_json_fast,
)

PARSERS = [parse_json, parse_json_fast]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "body",
    [
        b'"\\ud800"',
        b"NaN",
        b"1e400",
        b"[" * 40 + b"]" * 40,
        b'{"a": "\xed\xa0\x80"}',
        b"\xff",
        b"{",
    ],
)
def test_refused_by_both_parsers(parse, body):
    with pytest.raises(JsonProblem):
        parse(body)


@pytest.mark.parametrize(
    "body", [b"18446744073709551616", b"1" * 4000, b"9223372036854775808", b"-9223372036854775809"]
)
def test_exact_parser_refuses_integers_beyond_64_bits(body):
    with pytest.raises(JsonProblem, match="64-bit"):
        parse_json(body)


def test_limits_name_the_path():
    with pytest.raises(JsonProblem) as raised:
        check_json({"variants": [{"json": {"a": "x" * 11}}]}, JsonLimits(max_string=10))
    assert raised.value.path == "variants[0].json.a"


def test_depth_at_and_over_the_limit():
    limits = JsonLimits(max_depth=3)
    check_json([[["leaf"]]], limits)
    with pytest.raises(JsonProblem, match="deeper than 3"):
        check_json([[[["leaf"]]]], limits)


def test_check_text_refuses_nul_and_surrogates():
    assert check_text("ok", "description", 10) == "ok"
    for bad in ("a\x00b", "\ud800", "x" * 11):
        with pytest.raises(JsonProblem):
            check_text(bad, "description", 10)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_whatever_passes_the_check_orjson_can_encode(value):
    try:
        check_json(value)
    except JsonProblem:
        return
    assert orjson.loads(orjson.dumps(value)) is not None or value is None


def test_nul_is_refused_only_where_the_limits_say():
    check_json({"a\x00": "b\x00"})
    for value in ({"a\x00": 1}, {"a": ["b\x00"]}):
        with pytest.raises(JsonProblem, match="NUL"):
            check_json(value, JsonLimits(allow_nul=False))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"\\ud800"', "lone surrogate"),
        ("NaN", "not finite"),
        ("-Infinity", "not finite"),
        ("1e400", "not finite"),
        ("1" * 5000, "64-bit"),
        ("-" + "1" * 5000, "64-bit"),
        ("18446744073709551615", "64-bit"),
    ],
)
def test_lenient_reader_reads_what_check_json_then_refuses(text, problem):
    value = load_lenient(text)
    with pytest.raises(JsonProblem, match=problem):
        check_json(value)


@pytest.mark.parametrize(("text", "problem"), [("[" * 5000 + "]" * 5000, "too deep"), ("{", "not valid JSON")])
def test_lenient_reader_refuses_only_what_it_cannot_read(text, problem):
    with pytest.raises(JsonProblem, match=problem):
        load_lenient(text)


def test_a_tighter_integer_bound():
    limits = JsonLimits(max_abs_int=2**53 - 1)
    check_json([2**53 - 1, -(2**53 - 1)], limits)
    for value in (2**53, -(2**53)):
        with pytest.raises(JsonProblem, match="magnitude"):
            check_json({"n": value}, limits)


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_input_parses_to_an_encodable_value_or_a_json_problem(raw):
    for parse in PARSERS:
        try:
            value = parse(raw)
        except JsonProblem:
            continue
        assert orjson.loads(orjson.dumps(value)) == value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_what_python_json_writes_is_read_back_exactly_or_refused(value):
    text = json.dumps(value)
    try:
        parsed = parse_json(text)
    except JsonProblem:
        return
    assert parsed == value


_EDGY_TEXT = st.text(alphabet=st.sampled_from(["a", "é", "\x00", "\ud800", "k"]), max_size=6)
_EDGY_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _EDGY_TEXT
)
_EDGY_VALUES = st.recursive(
    _EDGY_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_EDGY_TEXT, inner, max_size=4),
    max_leaves=25,
)
_SMALL_LIMITS = JsonLimits(max_depth=3, max_string=4, max_items=3, max_key=3, allow_nul=False, max_abs_int=2**53)


@given(_EDGY_VALUES, st.sampled_from([JsonLimits(), _SMALL_LIMITS]))
def test_the_quick_check_and_the_naming_check_agree(value, limits):
    """`check_json` answers from a quick yes/no walk and names the place only on a no: both walks must
    refuse exactly the same values (NUL, lone surrogates, big integers, NaN, depth, sizes)."""
    from openautotune.domain.json_limits import _check, _fits

    try:
        _check(value, limits, "", 0)
        passes = True
    except JsonProblem:
        passes = False
    assert _fits(value, limits, 0) == passes
