"""What every webhook channel shares: reading its credentials, and one POST whose transport trouble becomes a Delivery.

The webhook URL carries the credential (access token, key), so nothing here ever puts it in an
error message: errors name the setting, the environment variable or the exception type instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from monitor.alerts.model import SENT, Delivery
from monitor.clock import Clock

JsonObject = dict[str, Any]
S = TypeVar("S")
log = structlog.get_logger("monitor.alerts.channels")


class HttpChannel(Generic[S]):
    """What every HTTP channel is built from, so the catalog builds them all alike."""

    def __init__(
        self, name: str, settings: S, http: httpx.AsyncClient, clock: Clock, language: str = "zh", link_base: str = ""
    ) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self.clock = clock
        self.language = language
        self.link_base = link_base


def errcode_verdict(provider: str, channel: str, body: JsonObject, retryable_by_code: Mapping[int, bool]) -> Delivery:
    """Read a Chinese robot's ``errcode`` reply: 0 is sent, known rate limits retry, anything else gives up."""
    code = body.get("errcode")
    if code == 0:
        return SENT
    errmsg = str(body.get("errmsg", ""))
    if not isinstance(code, int):
        log.warning("alert.channel_error", channel=channel, errcode=None, retryable=False)
        return Delivery(sent=False, error=f"{provider}: reply has no errcode")
    retryable = retryable_by_code.get(code, False)
    known = code in retryable_by_code
    log.warning("alert.channel_error", channel=channel, errcode=code, errmsg=errmsg, retryable=retryable, known=known)
    return Delivery(sent=False, retryable=retryable, error=f"{provider} errcode {code}: {errmsg}")


async def post(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | str:
    """POST; return the answer, or why there is none to read — each such failure is worth a retry.

    A timeout, a transport error, or a reply its Content-Encoding does not decode
    (``httpx.DecodingError``, which is not a ``TransportError``): the message may or may not
    have gone out, and the verdict is unknown. Only the exception's type is named, never the URL.
    """
    try:
        return await http.post(url, **kwargs)
    except httpx.TimeoutException as err:
        return f"timeout ({type(err).__name__})"
    except httpx.TransportError as err:
        return f"transport error ({type(err).__name__})"
    except httpx.DecodingError as err:
        return f"undecodable reply ({type(err).__name__})"


async def post_json(
    http: httpx.AsyncClient, url: str, payload: Mapping[str, Any]
) -> tuple[JsonObject | None, Delivery | None]:
    """POST ``payload`` as JSON; return the JSON object answered, or a failed Delivery when there is none to read.

    A JSON object comes back whatever the HTTP status, because webhook providers put their verdict
    in the body (often with HTTP 200, sometimes with 400). Without one:

    - timeout, connection or other transport error, HTTP 429, HTTP 5xx: retryable;
    - any other answer that is not a JSON object (a 404 page from a wrong URL, say): not retryable,
      unless the status was 2xx — then the message may not have gone out, so a retry may help.
    """
    response = await post(http, url, json=payload)
    if isinstance(response, str):
        return None, Delivery(sent=False, retryable=True, error=response)
    status = response.status_code
    if status == 429 or status >= 500:
        return None, Delivery(sent=False, retryable=True, error=f"HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, Delivery(
            sent=False, retryable=response.is_success, error=f"HTTP {status}: no JSON object in reply"
        )
    return body, None


def credential(raw: Mapping[str, Any], environ: Mapping[str, str], key: str, *, required: bool = True) -> str | None:
    """Read a secret from the variable named by ``<key>_env``, or from ``<key>`` itself; name the key on error."""
    env_key = f"{key}_env"
    if env_key in raw and key in raw:
        raise ValueError(f"{key}: give either {key} or {env_key}, not both")
    if env_key in raw:
        variable = raw[env_key]
        if not isinstance(variable, str) or not variable:
            raise ValueError(f"{env_key}: expected the name of an environment variable, got {variable!r}")
        value = environ.get(variable, "")
        if not value:
            raise ValueError(f"{env_key}: environment variable {variable} is not set or empty")
        return value
    value = raw.get(key)
    if value is None:
        if required:
            raise ValueError(f"{key}: missing (set {env_key} to the name of the environment variable holding it)")
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: expected a non-empty string, got {type(value).__name__}")
    return value


def webhook_url(raw: Mapping[str, Any], environ: Mapping[str, str], key: str = "webhook") -> str:
    """Read a webhook URL like :func:`credential` and check it is http(s) with a host."""
    url = credential(raw, environ, key) or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: expected an http(s) URL, got {masked(url)!r}")
    return url


def masked(secret: str) -> str:
    """Show only the start of a secret, enough to recognise a scheme or a typo."""
    return secret[:8] + "…" if len(secret) > 8 else "…"
