"""Metric sources: a team's own SQL table or query named as the place an autotune's success data lives.

Pure rules only (docs/metric-sources.md): what a source is, which names, columns, tables and queries
are accepted, and how one source row becomes a unit's outcome. Reading a source is `store`'s job.

Every identifier that reaches SQL text (a column, a table) must be a plain identifier: letters, digits
and `_`, not starting with a digit, at most 63 characters (PostgreSQL's limit). The dialect then
quotes it as needed. So `amount; DROP TABLE orders` can never be spliced into a statement: it is a
400 before anything is stored. A user's query is one SELECT (or WITH) statement run as a subquery;
the only values we add to it travel as bound parameters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openautotune.domain.autotune import Definition
from openautotune.domain.errors import FieldProblem, InvalidInput

MAX_NAME_LENGTH = 100
MAX_QUERY_LENGTH = 20_000
MAX_URL_LENGTH = 2_000
NOT_FOUND = "Metric source not found."

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}")
_OUTSIDE_ID_ALPHABET = re.compile(r"[^a-z0-9_.-]+")
_ID_SHAPE = re.compile(r"[a-z0-9_.-]{1,100}")
_QUERY_START = re.compile(r"\s*(select|with)\b", re.IGNORECASE)
# The same number grammar the SQL attribution accepts for event values (store/attribution.py).
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]{1,2})?")
_MAX_NUMBER_TEXT = 40


@dataclass(frozen=True)
class MetricSource:
    """A named SQL source. `url` is the full connection URL (with its password): it exists in memory
    only; the store keeps it encrypted and answers show `masked_url`."""

    id: str
    name: str
    url: str
    masked_url: str
    unit_id_column: str
    timestamp_column: str
    query: str | None = None
    table: str | None = None
    value_column: str | None = None
    description: str = ""
    created_ms: int = 0
    creator_id: str = ""
    creator_name: str = ""


@dataclass(frozen=True)
class SourceHealth:
    """What the engine last saw when it read a source: the last good read and the last failure."""

    last_read_ms: int | None = None
    last_error: str | None = None
    last_error_ms: int | None = None
    last_error_autotune_id: str | None = None


def source_id_from_name(name: str) -> str:
    """`"Orders (EU)"` -> `"orders_eu_"`, the same mapping autotune ids use."""
    return _OUTSIDE_ID_ALPHABET.sub("_", name.strip().lower())


def could_be_source_id(text: str) -> bool:
    return _ID_SHAPE.fullmatch(text) is not None


def is_identifier(text: str) -> bool:
    return _IDENTIFIER.fullmatch(text) is not None


def table_parts(table: str) -> list[str] | None:
    """`"analytics.orders"` -> `["analytics", "orders"]`; None unless 1 or 2 plain identifiers (a
    catalog-qualified name would be quoted as one schema name by SQLAlchemy: use a query for it)."""
    parts = table.split(".")
    if not 1 <= len(parts) <= 2 or not all(is_identifier(part) for part in parts):
        return None
    return parts


def query_text(query: str) -> str:
    """The query as it will run: trailing whitespace and one trailing `;` removed."""
    return query.strip().removesuffix(";").rstrip()


def _identifier_problem(property: str, value: str | None, required: bool) -> FieldProblem | None:
    if value is None:
        return FieldProblem(property, "is required") if required else None
    if not is_identifier(value):
        return FieldProblem(
            property,
            "must be a plain column name: letters, digits and _, not starting with a digit, at most 63 characters",
        )
    return None


def source_problems(
    *,
    name: str,
    url: str,
    query: str | None,
    table: str | None,
    unit_id_column: str | None,
    timestamp_column: str | None,
    value_column: str | None,
    description: str = "",
) -> list[FieldProblem]:
    """Every broken rule of a new source (the URL's driver is checked by the store)."""
    problems: list[FieldProblem] = []
    for property, text in (("url", url), ("query", query), ("description", description)):
        if text is not None and "\x00" in text:
            # PostgreSQL cannot store it; the other fields' own rules already refuse it.
            problems.append(FieldProblem(property, "must not contain the NUL character"))
    if _NAME.fullmatch(name) is None:
        problems.append(
            FieldProblem(
                "name",
                f"must be 1 to {MAX_NAME_LENGTH} characters: letters, digits, spaces, _ . and -, "
                "starting with a letter or digit",
            )
        )
    if not url.strip() or len(url) > MAX_URL_LENGTH:
        problems.append(FieldProblem("url", f"must be a SQLAlchemy URL of 1 to {MAX_URL_LENGTH} characters"))
    if (query is None) == (table is None):
        problems.append(FieldProblem("query", "give exactly one of query and table"))
    if table is not None and table_parts(table) is None:
        problems.append(
            FieldProblem("table", "must be a table name, optionally schema-qualified (schema.table): plain identifiers")
        )
    if query is not None:
        text = query_text(query)
        if len(query) > MAX_QUERY_LENGTH or _QUERY_START.match(text) is None:
            problems.append(
                FieldProblem("query", f"must be one SELECT or WITH statement of at most {MAX_QUERY_LENGTH} characters")
            )
        elif ";" in text:
            problems.append(FieldProblem("query", "must be one statement: ';' is allowed only at the end"))
    for property, value, required in (
        ("unitIdColumn", unit_id_column, True),
        ("timestampColumn", timestamp_column, True),
        ("valueColumn", value_column, False),
    ):
        problem = _identifier_problem(property, value, required)
        if problem is not None:
            problems.append(problem)
    return problems


def definition_problems(definition: Definition) -> list[FieldProblem]:
    """An autotune reading a metric source: its `valueColumn` reaches SQL, so it must be a plain name."""
    if definition.metric_source_id is None:
        return []
    problem = _identifier_problem("valueColumn", definition.value_column, required=False)
    return [problem] if problem is not None else []


def check_source(**fields: Any) -> None:
    problems = source_problems(**fields)
    if problems:
        raise InvalidInput(problems)


def outcome_number(raw: object) -> float | None:
    """A source value as the unit's number, or None when it is not a finite plain number (a reject).

    Numbers of any SQL numeric type are taken as they are; text must follow the JSON number grammar
    the event path accepts; NULL, booleans, and anything else are rejects.
    """
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float | Decimal):
        try:
            number = float(raw)
        except (OverflowError, ValueError):
            return None
        return number if math.isfinite(number) else None
    if isinstance(raw, str) and len(raw) <= _MAX_NUMBER_TEXT and _NUMBER.fullmatch(raw):
        return float(raw)
    return None


def value_column_for(definition: Definition, source: MetricSource) -> str | None:
    """The autotune's `valueColumn` overrides the source's (console-api.md, "Metric sources")."""
    return definition.value_column or source.value_column
