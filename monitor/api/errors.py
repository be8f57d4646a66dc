"""One error shape for every failed request, so an integrator writes one error handler.

Every 4xx and 5xx answers::

    {"error": {"code": "invalid_field", "field": "shipments[3].shipped_at",
               "value": "2026-11-11 09:00", "message": "time without an offset: ..."}}

``code`` is stable and machine-readable, ``message`` is for people, ``field`` names the bad
part of the request (with the index in a batch) and ``value`` echoes the bad value when it
is short enough to be useful. ``allowed`` lists the accepted values where there is a list.

::

    ApiError (an HTTPException, so FastAPI re-raises it untouched from body parsing)
    ├── 400 invalid_json            the body is not JSON
    ├── 401 unauthorized            missing or wrong bearer token
    │       missing_signature, stale_timestamp, bad_signature, bad_token   (signed endpoints)
    ├── 404 not_found, unknown_carrier
    │       push_disabled           a carrier push route with no authentication configured (off)
    ├── 409 already_resolved, refund_conflict
    ├── 413 too_large
    ├── 422 invalid_field, missing_field, unknown_field
    ├── 501 push_not_supported
    └── 503 not_configured, database_unavailable (the database is down or timed out; retry)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("monitor.api")

#: Longest string echoed back as ``value``: enough to spot a typo, not a way to reflect a payload.
MAX_ECHO = 200
#: Largest integer echoed back (a 5,000-digit one would not even turn into text).
MAX_ECHO_INT = 2**63
#: Seconds a client should wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 5
_UNSET: Any = object()
#: ``code`` for HTTP errors raised by the framework itself (unknown route, wrong method...).
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    501: "not_implemented",
    503: "unavailable",
}


def echo(value: Any) -> Any:
    """Return ``value`` if it is a short scalar worth echoing, else the unset marker."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= MAX_ECHO_INT:
        return value
    if isinstance(value, float) and math.isfinite(value):  # inf and NaN are not JSON
        return value
    if isinstance(value, str) and len(value) <= MAX_ECHO and _encodable(value):
        return value
    return _UNSET


def _encodable(text: str) -> bool:
    """Tell whether ``text`` can go out as UTF-8 (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ApiError(HTTPException):
    """A request we refuse, with everything the error body says."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        value: Any = _UNSET,
        allowed: Sequence[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.field = field
        self.value = echo(value) if value is not _UNSET else _UNSET
        self.allowed = list(allowed) if allowed is not None else None

    def body(self) -> dict[str, Any]:
        """Return the JSON document answered."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.value is not _UNSET:
            error["value"] = self.value
        if self.allowed is not None:
            error["allowed"] = self.allowed
        return {"error": error}


def field_path(loc: Sequence[str | int]) -> str:
    """Write a location as a reader would: ``("shipments", 3, "carrier")`` → ``shipments[3].carrier``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def from_validation(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> ApiError:
    """Turn pydantic's first error into an ApiError naming the field and the bad value."""
    first = errors[0]
    loc = [*prefix, *first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}".rstrip(": "), field="body")
    where = field_path(loc) or "body"
    code = {"missing": "missing_field", "extra_forbidden": "unknown_field"}.get(kind, "invalid_field")
    message = first.get("msg", "invalid")
    if code == "unknown_field":
        message = f"unknown field {where!r}"
    allowed = None
    expected = (first.get("ctx") or {}).get("expected")
    if kind in ("enum", "literal_error") and isinstance(expected, str):
        allowed = [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]
    value = first.get("input", _UNSET) if code != "missing_field" else _UNSET
    return ApiError(422, code, message, field=where, value=value, allowed=allowed)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if not isinstance(exc, ApiError):
        code = CODE_BY_STATUS.get(exc.status_code, "error")
        exc = ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = from_validation(exc.errors())
    return JSONResponse(error.body(), status_code=error.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("http.unexpected_error", method=request.method, path=request.url.path, error=type(exc).__name__)
    body = {"error": {"code": "internal_error", "message": "internal error; the server log has the details"}}
    return JSONResponse(body, status_code=500)


def database_down(exc: BaseException) -> bool:
    """Tell whether ``exc`` means the database is unreachable, locked or too slow, not that our SQL is wrong."""
    if isinstance(exc, OperationalError | PoolTimeout | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_down(exc):
        raise exc  # a bug of ours: the last-resort handler answers 500 internal_error and logs the traceback
    log.warning("http.database_unavailable", method=request.method, path=request.url.path, error=type(exc).__name__)
    error = ApiError(
        503,
        "database_unavailable",
        "the database is unavailable or too slow; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    return JSONResponse(error.body(), status_code=503, headers=error.headers)


def install(app: FastAPI) -> None:
    """Make every error, ours or the framework's, answer in the one shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in (DBAPIError, PoolTimeout, TimeoutError):
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(Exception, _unexpected)
