"""Static files of the dashboard: its own stylesheet, and plotly.min.js from the installed plotly package."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import plotly
from fastapi import APIRouter
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CACHE = "public, max-age=86400"

router = APIRouter(include_in_schema=False)


@cache
def _asset(path: Path) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


def asset_version(name: str) -> str:
    """A content hash to put in asset URLs, so browsers never keep a stale copy after an upgrade."""
    return _asset(PLOTLY_JS if name == "plotly.min.js" else STATIC_DIR / name)[1]


@router.get("/static/plotly.min.js")
def plotly_js() -> Response:
    body, _ = _asset(PLOTLY_JS)
    return Response(body, media_type="text/javascript", headers={"Cache-Control": CACHE})


@router.get("/static/dashboard.css")
def stylesheet() -> Response:
    body, _ = _asset(STATIC_DIR / "dashboard.css")
    return Response(body, media_type="text/css", headers={"Cache-Control": CACHE})


@router.get("/static/dashboard.js")
def script() -> Response:
    body, _ = _asset(STATIC_DIR / "dashboard.js")
    return Response(body, media_type="text/javascript", headers={"Cache-Control": CACHE})
