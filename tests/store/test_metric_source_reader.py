"""The metric-source reader's pieces: URL masking and redaction, sealing, timestamp kinds, value rules,
and the statement it builds (identifiers quoted, our values bound, the user's colons left as text)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from openautotune.domain.metric_sources import MetricSource, outcome_number, source_problems
from openautotune.store import metric_source_reader as reader
from openautotune.store.sealed import CannotUnseal, seal, unseal

MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_masking_and_redaction() -> None:
    url = "postgresql+psycopg://shop:s3cret@db:5432/shop?sslpassword=other&application_name=x"
    assert reader.mask_url(url) == "postgresql+psycopg://shop:***@db:5432/shop?application_name=x&sslpassword=***"
    assert reader.mask_url("sqlite:////data/shop.db") == "sqlite:////data/shop.db"
    assert reader.redact("auth failed for s3cret and other", url) == "auth failed for *** and ***"


def test_sealing_round_trips_and_refuses_another_key() -> None:
    sealed = seal("key one", "postgresql://u:p@h/d")
    assert "p@h" not in sealed
    assert unseal("key one", sealed) == "postgresql://u:p@h/d"
    with pytest.raises(CannotUnseal):
        unseal("key two", sealed)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), MS),
        (dt.datetime(2026, 1, 1), MS),  # naive = UTC
        (dt.datetime(2026, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))), MS),
        (dt.date(2026, 1, 1), MS),
        (MS, MS),
        (Decimal(MS), MS),
        ("2026-01-01 00:00:00", MS),
        ("2026-01-01T02:00:00+02:00", MS),
        ("yesterday", None),
        (True, None),
        (None, None),
    ],
)
def test_timestamp_kinds(value: object, ms: int | None) -> None:
    assert reader._to_ms(value) == ms


def test_bounds_take_the_samples_kind_and_widen_by_a_second() -> None:
    assert reader._bound(dt.datetime(2025, 5, 5), MS, -1) == dt.datetime(2025, 12, 31, 23, 59, 59)
    assert reader._bound(dt.datetime(2025, 5, 5, tzinfo=dt.UTC), MS, +1) == dt.datetime(
        2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC
    )
    assert reader._bound(123, MS, -1) == MS - 1000
    assert reader._bound("2025-05-05T10:00:00", MS, +1) == "2026-01-01T00:00:01"
    assert reader._bound("2025-05-05 10:00:00.123", MS, -1) == "2025-12-31 23:59:59"
    assert reader._bound("2025-05-05T10:00:00+02:00", MS, -1) is None  # offsets do not sort as text
    assert reader._bound(b"?", MS, -1) is None


@pytest.mark.parametrize(
    ("raw", "number"),
    [(12, 12.0), (Decimal("12.50"), 12.5), ("12.5", 12.5), ("-1e5", -1e5), ("1e999", None), ("n/a", None),
     ("0x10", None), (" 1", None), (float("nan"), None), (None, None), (True, None)],
)  # fmt: skip
def test_outcome_numbers_follow_the_event_paths_grammar(raw: object, number: float | None) -> None:
    assert outcome_number(raw) == number


def test_the_statement_quotes_identifiers_binds_values_and_keeps_user_colons() -> None:
    source = MetricSource(
        id="o",
        name="o",
        url="sqlite://",
        masked_url="sqlite://",
        unit_id_column="User_Id",
        timestamp_column="created_at",
        query="SELECT 1 AS \"User_Id\", 2 AS created_at WHERE 'a:b' = :notours;",
    )
    from_clause = reader._from_clause(source, ["User_Id", "created_at"])
    statement = sa.select(from_clause.c["User_Id"]).where(from_clause.c.created_at > sa.bindparam("lo", 5))
    compiled = statement.compile(dialect=sa.create_engine("postgresql+psycopg://").dialect)
    text = str(compiled)
    assert '"User_Id"' in text and ":notours" in text and "'a:b'" in text
    assert set(compiled.params) == {"lo"}


def test_only_plain_identifiers_pass() -> None:
    def problems(**change: object) -> list[str]:
        fields: dict[str, object] = {
            "name": "orders",
            "url": "sqlite://",
            "query": None,
            "table": "orders",
            "unit_id_column": "user_id",
            "timestamp_column": "ts",
            "value_column": None,
        }
        fields.update(change)
        return [p.property for p in source_problems(**fields)]  # type: ignore[arg-type]

    assert problems() == []
    assert problems(table="analytics.orders") == []
    assert problems(table="a.b.c") == ["table"]  # catalog.schema.table: use a query
    assert problems(unit_id_column="user id") == ["unitIdColumn"]
    assert problems(value_column="x)--") == ["valueColumn"]
    assert problems(table="orders o") == ["table"]
    assert problems(table=None, query="WITH x AS (SELECT 1) SELECT * FROM x;") == []
    assert problems(table=None, query="SELECT 1; SELECT 2") == ["query"]
