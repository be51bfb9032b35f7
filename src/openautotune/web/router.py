"""The dashboard's routes in one router, for `api/app.py` to include."""

from __future__ import annotations

from fastapi import APIRouter

from openautotune.web import history_api, pages, review_pages, static

router = APIRouter()
router.include_router(static.router)
router.include_router(history_api.router)
router.include_router(review_pages.router)
router.include_router(pages.router)
