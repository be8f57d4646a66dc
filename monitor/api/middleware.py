"""Plain ASGI middlewares: a body-size cap, a last-resort 500, and one log event plus metrics per request.

Plain ASGI (not ``BaseHTTPMiddleware``) so a body is never buffered twice and the cap can
stop a chunked upload as soon as it passes the limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from re import Pattern
from typing import Any

import structlog
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api.errors import ApiError
from monitor.metrics import Metrics

log = structlog.get_logger("monitor.api")

#: Routes polled by load balancers and Prometheus: logged at debug, not once every few seconds at info.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "<unmatched>"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the body is larger than {limit} bytes", field="body")


class BodyLimit:
    """Answer 413 to a body over ``limit`` bytes, by Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            error = _too_large(self.limit)
            await _send_json(send, error.status_code, error.body())
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _too_large(self.limit)  # an HTTPException: the error handler answers 413
            return message

        await self.app(scope, counted, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Answer a JSON document before the app runs."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class CatchAll:
    """Answer an unexpected exception with a JSON 500 in the one error shape, and log it once.

    Starlette's own last resort re-raises after answering, and uvicorn then drops the
    connection, so a client could see a reset instead of the 500. Here the exception stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            log.error("http.unexpected_error", method=scope["method"], path=scope["path"], exc_info=exc)
            if started:
                raise
            body = {"error": {"code": "internal_error", "message": "internal error; the server log has the details"}}
            await _send_json(send, 500, body)


class RouteTemplates:
    """Map a request path to its route's template (``/api/v1/anomalies/{anomaly_id}``), never the raw path.

    The raw path would give a metric series per anomaly id. The table is built from the
    routes' own templates when the app is assembled, so it does not depend on how a given
    FastAPI version reports the matched route in the ASGI scope.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        self._table: list[tuple[Pattern[str], str]] = [(compile_path(t)[0], t) for t in dict.fromkeys(templates)]

    def __call__(self, path: str) -> str:
        """Return the template matching ``path``; every unknown path shares one label."""
        for pattern, template in self._table:
            if pattern.match(path):
                return template
        return UNMATCHED


class AccessLog:
    """Log one ``http.request`` event per request and count it, by route template and status.

    Every answer carries ``Server-Timing: app;dur=<ms>``: the milliseconds from the request's arrival to
    its headers, so a client (the console benchmark, a browser's dev tools) sees server time apart
    from the network.

    Logs method, route, status and duration only: never headers (tokens, signatures), query
    strings or bodies.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: RouteTemplates) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Server time up to the headers (the handler's work, not the network): what benchmarks read.
                dur = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", dur)]}
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            seconds = time.perf_counter() - started
            method, route = scope["method"], self.templates(scope["path"])
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(seconds)
            emit = log.debug if route in QUIET_ROUTES else log.info
            emit("http.request", method=method, route=route, status=status, duration_ms=round(seconds * 1000, 1))
