"""Headers every Console API route accepts (console-api.md, "Conventions"), declared once so the
autotune and review routers document and check them alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from openautotune.api.errors import ApiError

API_VERSION = "20240601"


def check_version(
    statsig_api_version: Annotated[str | None, Header(alias="STATSIG-API-VERSION")] = None,
    _review: Annotated[str | None, Header(alias="x-respect-review-settings")] = None,
) -> None:
    """`STATSIG-API-VERSION` must be the one version this server speaks; `x-respect-review-settings`
    is declared here and read by api.reviews.held_for_review."""
    if statsig_api_version is not None and statsig_api_version != API_VERSION:
        raise ApiError(
            400, f"Unsupported STATSIG-API-VERSION {statsig_api_version!r}; this server speaks {API_VERSION}"
        )
