"""`/docs` served with Swagger UI from an installed package, so it renders with no internet access."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

SWAGGER_ASSETS = "/_swagger"


def install(app: FastAPI) -> None:
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="openautotune API",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
        )
