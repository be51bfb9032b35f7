"""PostgreSQL: give the event tables statistics before the engine joins them.

PostgreSQL plans the attribution and delayed-conversion joins from table statistics. A table that was
never analysed (bulk-loaded, copied by `events copy`, or filled faster than autovacuum's first pass)
is planned blind: the delay histogram's join of 85,000 units to 170,000 events ran for over ten
minutes that way, and in 33 ms once the tables were analysed. Before each round of updates the engine
asks the statistics views which event tables have no statistics yet, or have had more rows written
since their last analysis than they had then, and analyses those (tens of milliseconds; autovacuum
would get there, but not always before the next update). SQLite needs nothing: its planner uses the
indexes without statistics.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger("openautotune.engine")

EVENT_TABLES = ("units", "events", "exposures")
# Below this many changed rows a missing analysis costs nothing worth a statement.
MIN_CHANGED_ROWS = 1_000

_STALE = sa.text(
    """
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname IN :tables
  AND n_mod_since_analyze >= :min_changed
  AND ((last_analyze IS NULL AND last_autoanalyze IS NULL) OR n_mod_since_analyze > n_live_tup)
ORDER BY relname
"""
).bindparams(sa.bindparam("tables", expanding=True))


def stale_tables(conn: Connection) -> list[str]:
    """The event tables PostgreSQL would plan without (or with badly outdated) statistics."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(_STALE, {"tables": list(EVENT_TABLES), "min_changed": MIN_CHANGED_ROWS})
    return [str(name) for (name,) in rows]


def analyse_stale(conn: Connection) -> list[str]:
    """ANALYZE each stale event table (see the module docstring); the tables analysed."""
    tables = stale_tables(conn)
    for table in tables:
        log.info("analysing %s before the updates (no statistics yet, or outdated)", table)
        conn.execute(sa.text(f'ANALYZE "{table}"'))  # a name from EVENT_TABLES, never user input
    return tables
