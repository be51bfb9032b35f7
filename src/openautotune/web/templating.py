"""The Jinja2 environment of the dashboard, with the few filters its pages need."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"


def format_ms(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "—"
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.{digits}f}%"


def format_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["ms"] = format_ms
templates.env.filters["pct"] = format_percent
templates.env.filters["num"] = format_number
