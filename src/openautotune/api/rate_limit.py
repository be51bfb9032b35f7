"""Rate limits per key (console-api.md, "Rate limits"): Console API mutations, Console API reads and
SDK endpoints each have their own budget; over one, a 429 with `Retry-After` in the error shape.

The limiters and their shared counters (database or Redis) live in service.rate_limits; this module
picks the budget a request spends and turns a refusal into the answer.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from openautotune.clock import Clock
from openautotune.domain.keys import KeyRecord
from openautotune.service.rate_limits import BatchedLimiter, ExactLimiter, parse_budgets
from openautotune.service.rate_limits.counters import Counters, DatabaseCounters, RedisCounters
from openautotune.settings import Settings
from openautotune.store.database import Database

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RateLimited(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"Too many requests. Retry after {retry_after_seconds} seconds.")
        self.retry_after_seconds = retry_after_seconds


class RateLimits:
    """The three budgets of one server process, over counters every process shares."""

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        counters: Counters = RedisCounters(settings.redis_url) if settings.redis_url else DatabaseCounters(db)
        self.mutations = ExactLimiter(
            counters, parse_budgets(settings.rate_limit_mutations, "OPENAUTOTUNE_RATE_LIMIT_MUTATIONS"), clock
        )
        self.reads = BatchedLimiter(
            counters, parse_budgets(settings.rate_limit_reads, "OPENAUTOTUNE_RATE_LIMIT_READS"), clock
        )
        self.sdk = BatchedLimiter(
            counters, parse_budgets(settings.rate_limit_sdk, "OPENAUTOTUNE_RATE_LIMIT_SDK"), clock
        )


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def spend_console(request: Request, key: KeyRecord) -> None:
    """One request of an authenticated console key: a read or a mutation, by its method."""
    limits = _limits(request)
    if request.method in READ_METHODS:
        verdict = limits.reads.check(f"console-read:{key.id}")
    else:
        verdict = limits.mutations.check(f"console-write:{key.id}")
    if not verdict.allowed:
        raise RateLimited(verdict.retry_after_seconds)


def spend_sdk(request: Request, key: KeyRecord) -> None:
    verdict = _limits(request).sdk.check(f"sdk:{key.id}")
    if not verdict.allowed:
        raise RateLimited(verdict.retry_after_seconds)


def install(app: FastAPI) -> None:
    @app.exception_handler(RateLimited)
    async def _too_many(_request: Request, error: RateLimited) -> Response:
        body = {"status": 429, "message": str(error)}
        return Response(
            orjson.dumps(body),
            status_code=429,
            media_type="application/json",
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
