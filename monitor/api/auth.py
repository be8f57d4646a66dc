"""Who may call: a bearer token for /api/v1, an HMAC signature for the refund webhook.

Both comparisons are constant-time (``hmac.compare_digest``), and neither the token nor a
signature is ever logged or echoed back.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.errors import ApiError

#: Declared in the OpenAPI document, so Swagger UI offers an "Authorize" button.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="`Authorization: Bearer <token>`; the token is the value of `PARCEL_MONITOR_API_TOKEN`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]

TIMESTAMP_HEADER = "X-Parcel-Monitor-Timestamp"
SIGNATURE_HEADER = "X-Parcel-Monitor-Signature"
#: A signed request older or newer than this is refused, so a captured one cannot be replayed later.
TOLERANCE_SECONDS = 300


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """Return the ``X-Parcel-Monitor-Signature`` value of a body (the docs/webhook.md scheme)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str | None, given: str | None, raw_body: bytes, now: datetime) -> None:
    """Refuse (401) a request that is unsigned, stale or signed over other bytes or with another secret."""
    if not timestamp or not given:
        raise ApiError(401, "missing_signature", f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # "²".isdigit() is True
        raise ApiError(401, "bad_signature", f"{TIMESTAMP_HEADER} must be unix seconds", field=TIMESTAMP_HEADER)
    skew = abs(now.timestamp() - int(timestamp))
    if skew > TOLERANCE_SECONDS:
        raise ApiError(
            401,
            "stale_timestamp",
            f"{TIMESTAMP_HEADER} is {skew:.0f} s from the server's clock (at most {TOLERANCE_SECONDS} s)",
            field=TIMESTAMP_HEADER,
        )
    if not hmac.compare_digest(given.encode(), signature(secret, timestamp, raw_body).encode()):
        raise ApiError(401, "bad_signature", "the signature does not match the body", field=SIGNATURE_HEADER)
