"""The API's own documentation page, ``/docs``, served entirely from this machine.

FastAPI's default page loads Swagger UI from a CDN and is blank without internet. Here the
page's script, style sheet and icon come from the ``swagger-ui-bundle`` package, mounted
under ``/docs/assets``; Swagger UI's online spec validator is switched off, so nothing on
the page reaches off the machine. ReDoc is not offered (no package ships it).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def install(app: FastAPI, openapi_url: str) -> None:
    """Add ``/docs`` and its assets to ``app`` (built with ``docs_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=None,
            # null turns off the badge that posts the spec to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)
