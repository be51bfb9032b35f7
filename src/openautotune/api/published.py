"""The published config specs a request is answered from: the spec downloads (`sdk_specs`) and the
contextual routes (`cmab`) both ask here, so neither imports the other."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from openautotune.api.errors import ApiError
from openautotune.api.spec_cache import Published, SpecCache, SpecsUnavailable


async def published_specs(request: Request) -> Published:
    cache: SpecCache = request.app.state.specs
    published = cache.fresh()
    if published is not None:
        return published
    try:
        return await run_in_threadpool(cache.current)
    except SpecsUnavailable as error:
        raise ApiError(503, str(error)) from error
