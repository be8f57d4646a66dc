"""The ops console: server-rendered pages for ops staff, served by the daemon on the API's port.

:func:`install` adds the pages (``/``, ``/login``, ``/queue``, ``/parcel`` …) and the static
assets (``/console/static``) to the API's app. Templates, CSS and JS ship inside this package:
no CDN, no build step, works offline. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/console/static"


def paths() -> list[str]:
    """Return the path template of every console page, for the access log's route labels."""
    from monitor.console.pages import router

    return [route.path for route in router.routes if isinstance(getattr(route, "path", None), str)]


def install(app: FastAPI) -> None:
    """Add the console's pages and assets to ``app``."""
    from monitor.console.pages import router

    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(packages=[("monitor.console", "static")]), name="console-static")
