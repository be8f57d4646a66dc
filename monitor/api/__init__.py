"""The HTTP API of the daemon (FastAPI): ``create_app(ApiContext(...))``, served by uvicorn."""

from monitor.api.app import ApiContext, create_app

__all__ = ["ApiContext", "create_app"]
