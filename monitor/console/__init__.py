"""The ops console: server-rendered pages for ops staff, served by the daemon on the API's port.

:func:`install` adds the pages (``/``, ``/login``, ``/queue``, ``/parcel`` …) and the static
assets (``/console/static``) to the API's app. Templates, CSS and JS ship inside this package:
no CDN, no build step, works offline. See docs/console.md.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/console/static"


#: The console's page modules, each with its own ``router``: one room per screen.
PAGE_MODULES = ("pages", "kpis", "ops", "forecast")


def _routers() -> list[APIRouter]:
    return [importlib.import_module(f"monitor.console.{name}").router for name in PAGE_MODULES]


def paths() -> list[str]:
    """Return the path template of every console page, for the access log's route labels."""
    return [route.path for router in _routers() for route in router.routes
            if isinstance(getattr(route, "path", None), str)]  # fmt: skip


def install(app: FastAPI) -> None:
    """Add the console's pages and assets to ``app``."""
    for router in _routers():
        app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(packages=[("monitor.console", "static")]), name="console-static")
