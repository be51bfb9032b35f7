"""Where counters live: the database (default) or Redis. Both are shared by every server process.

Each store answers two questions: `admit` (exact sliding log: may one more request pass every
budget, and if not, in how many ms?) and `add` (fixed-window count: add n, return the total).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from openautotune.service.rate_limits.budgets import Budget
from openautotune.store import rate_limits as store
from openautotune.store.database import Database


class Counters(Protocol):
    def admit(self, scope: str, budgets: tuple[Budget, ...], now_ms: int) -> int | None:
        """None when admitted (and counted); else ms until it would be."""

    def add(self, scope: str, window_ms: int, window_start_ms: int, delta: int) -> int:
        """Add `delta` to the window's count; the new total over every process."""


class DatabaseCounters:
    def __init__(self, db: Database) -> None:
        self.db = db

    def admit(self, scope: str, budgets: tuple[Budget, ...], now_ms: int) -> int | None:
        longest = max(budget.window_ms for budget in budgets)
        with store.relaxed_write(self.db) as conn:
            store.lock_scope(conn, scope)
            wait = 0
            for budget in budgets:
                since = now_ms - budget.window_ms
                count = store.count_hits(conn, scope, since)
                if count >= budget.limit:
                    # The hit that must leave the window before one more fits in it.
                    leaving = store.nth_hit(conn, scope, since, count - budget.limit)
                    wait = max(wait, leaving + budget.window_ms - now_ms, 1)
            if not wait:
                store.add_hit(conn, scope, now_ms)
                store.forget_hits(conn, scope, now_ms - longest)
            return wait or None

    def add(self, scope: str, window_ms: int, window_start_ms: int, delta: int) -> int:
        with store.relaxed_write(self.db) as conn:
            total = store.add_to_counter(conn, scope, window_start_ms, delta)
            store.forget_counters(conn, scope, window_start_ms - window_ms)
            return total


# KEYS[1]: the scope's sorted set of hit times. ARGV: now, longest window, a unique member, then
# (limit, window) pairs. Atomic in Redis, so processes never both take the last slot.
_ADMIT = """
local now = tonumber(ARGV[1])
local longest = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local wait = 0
for i = 4, #ARGV, 2 do
  local limit = tonumber(ARGV[i])
  local window = tonumber(ARGV[i + 1])
  local count = redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf')
  if count >= limit then
    local leaving = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES',
                               'LIMIT', count - limit, 1)
    wait = math.max(wait, tonumber(leaving[2]) + window - now, 1)
  end
end
if wait > 0 then return wait end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], longest)
return 0
"""
PREFIX = "openautotune:ratelimit:"


class RedisCounters:
    def __init__(self, url: str) -> None:
        import redis  # optional: only servers configured with OPENAUTOTUNE_REDIS_URL need it

        self.client: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._admit = self.client.register_script(_ADMIT)

    def admit(self, scope: str, budgets: tuple[Budget, ...], now_ms: int) -> int | None:
        longest = max(budget.window_ms for budget in budgets)
        pairs = [value for budget in budgets for value in (budget.limit, budget.window_ms)]
        member = f"{now_ms}:{uuid.uuid4().hex}"
        wait = int(self._admit(keys=[PREFIX + "log:" + scope], args=[now_ms, longest, member, *pairs]))
        return wait or None

    def add(self, scope: str, window_ms: int, window_start_ms: int, delta: int) -> int:
        key = f"{PREFIX}count:{scope}:{window_start_ms}"
        pipe = self.client.pipeline()
        pipe.incrby(key, delta)
        pipe.pexpire(key, 2 * window_ms)
        total, _ = pipe.execute()
        return int(total)
