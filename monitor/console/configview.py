"""The effective configuration as the 设置 page shows it: every value the daemon runs with, no secret.

Three locks, each enough by itself for the secrets we know of:

1. **Known secret fields** (:data:`KNOWN_SECRETS`): the API's token and refund secret, the
   database URL's password — whatever their value, it is masked.
2. **Field names**: a key whose name says secret (password, secret, token, key, salt,
   check word, signature, credential, webhook …; :data:`SECRET_NAME`) is masked — except a
   ``*_env`` key, whose value is the *name* of an environment variable: that name is shown,
   and the variable's value never is.
3. **Values**: every secret the daemon holds (the API's, each channel's resolved settings,
   every variable a ``*_env`` key names) is collected first, and any shown value containing
   one is masked — so a secret pasted into an innocent-looking key is caught too.

URLs show their scheme, host and path, never a password nor query values (a DingTalk
webhook's ``access_token``); a webhook's path is hidden as well (Slack puts its token there).
Objects we do not know are shown by type name only: a ``repr`` could hold anything.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta, tzinfo
from enum import Enum
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit

from pydantic import BaseModel

from monitor.config import Settings

MASK = "••••••"
#: Dotted keys that are secret whatever they are called or hold.
KNOWN_SECRETS = frozenset({"api.token", "api.refund_secret"})
#: Keys holding a URL whose password (and query values) must not show.
URL_KEYS = frozenset({"database_url"})
#: A key whose name says it holds a secret (matched on its last part, ``_``/``-`` separated words).
SECRET_NAME = re.compile(
    r"(?:^|[_-])(?:pass(?:word|wd|phrase)?|pwd|secrets?|tokens?|keys?|apikey|api_key|salt|check_?word|signature|"
    r"sign|credentials?|private|auth|authorization|cookie|session|dsn|webhook|access_token|sk|ak)(?:$|[_-])",
    re.IGNORECASE,
)
#: Shortest secret value the value check looks for (shorter ones would mask ordinary words).
MIN_SECRET = 4
URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Entry:
    """One shown setting: its dotted key, its value as text, and whether it was masked."""

    key: str
    value: str
    masked: bool = False
    #: For a ``*_env`` key: the variable is set (its value itself is never shown).
    note: str = ""


def plain(obj: Any, depth: int = 0) -> Any:
    """Return ``obj`` as dicts, lists and scalars; unknown objects become their type's name."""
    if depth > 12:
        return f"<{type(obj).__name__}>"
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, date | time | timedelta | tzinfo):
        return str(obj)
    if isinstance(obj, BaseModel):
        return plain(obj.model_dump(), depth + 1)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}  # fmt: skip
    if isinstance(obj, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return sorted((plain(v, depth + 1) for v in obj), key=str)
    if isinstance(obj, list | tuple):
        return [plain(v, depth + 1) for v in obj]
    return f"<{type(obj).__name__}>"


def _flat(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            yield key, "{}"
        for k, v in value.items():
            yield from _flat(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            yield from _flat(v, f"{key}[{i}]")
    else:
        yield key, value


def _last(key: str) -> str:
    return re.split(r"[.\[]", key)[-1].rstrip("]")


def secret_name(key: str) -> bool:
    """Tell whether a dotted key's last part names a secret (``*_env`` keys name a variable, not a secret)."""
    last = _last(key)
    return not last.lower().endswith("_env") and bool(SECRET_NAME.search(last))


def mask_url(url: str, *, hide_path: bool = False) -> str:
    """Return a URL with its password and query values masked (and its path, for a webhook)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    user = f"{parts.username}@" if parts.username else ""
    if parts.password is not None:
        user = f"{parts.username or ''}:{MASK}@"
    path = ("/" + MASK if parts.path not in ("", "/") else parts.path) if hide_path else parts.path
    query = "&".join(f"{quote(k, safe='')}={MASK}" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return SplitResult(parts.scheme, f"{user}{host}{port}", path, query, "").geturl()


def _secret_values(settings: Settings, environ: Mapping[str, str]) -> set[str]:
    """Every secret value the daemon holds: to mask wherever it would show, whatever its key."""
    found: set[str] = set()

    def take(value: Any, key: str) -> None:
        for k, v in _flat(plain(value), key):
            if isinstance(v, str) and (secret_name(k) or k in KNOWN_SECRETS) and len(v) >= MIN_SECRET:
                found.add(v)
            if isinstance(v, str) and _last(k).lower().endswith("_env") and environ.get(v):
                found.add(environ[v])

    take(settings, "")
    for channel in settings.channels:  # the resolved settings objects hold the secrets themselves
        take(channel.settings, "channel")
    for raw in (settings.api.token, settings.api.refund_secret):
        if raw:
            found.add(raw)
    try:
        password = urlsplit(settings.database_url).password
    except ValueError:
        password = None
    if password:
        found.add(password)
    return {v for v in found if len(v) >= MIN_SECRET}


def effective(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Entry]:
    """Return the configuration the daemon runs with, flattened to dotted keys, every secret masked."""
    env = os.environ if environ is None else environ
    secrets_held = _secret_values(settings, env)
    shown = plain(settings)
    for channel in shown.get("channels", []):
        channel.pop("settings", None)  # the resolved secrets: its ``options`` show what the file says
    entries: list[Entry] = []
    for key, value in _flat(shown, ""):
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
        if _last(key).lower().endswith("_env") and isinstance(value, str):
            note = "set" if env.get(value) else "not set"
            entries.append(Entry(key, text, note=note))
            continue
        if key in KNOWN_SECRETS or (secret_name(key) and not URL.match(text)):
            entries.append(Entry(key, MASK if text else "", masked=bool(text)))
            continue
        if isinstance(value, str) and URL.match(value):
            text = mask_url(value, hide_path="webhook" in _last(key).lower() or "hook" in text.lower())
        elif key in URL_KEYS:
            text = MASK
        if any(s in text for s in secrets_held):
            entries.append(Entry(key, MASK, masked=True))
            continue
        entries.append(Entry(key, text, masked=text != (value if isinstance(value, str) else text)))
    return entries
