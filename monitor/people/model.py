"""Roles, the principal a request acts as, an account as the CLI shows it, and the checks of each field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from monitor.logging import mask_phone_numbers
from monitor.people.errors import InvalidField


class Role(StrEnum):
    """What an account may do (see :func:`monitor.people.roles.can`)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


#: The login of the configured API token (``ApiSettings.token``); no account may take it.
SERVICE_LOGIN = "service"
#: The login recorded for changes made with the ``parcel-monitor`` command line on the database itself.
CLI_LOGIN = "cli"
RESERVED_LOGINS = frozenset({SERVICE_LOGIN, CLI_LOGIN, "system"})
LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
MOBILE = re.compile(r"1[3-9]\d{9}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIN_PASSWORD = 8
#: Longer passwords are refused, so nobody makes the server hash a megabyte per login attempt.
MAX_PASSWORD = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: an account (``account_id``), or the service token (``account_id`` None)."""

    account_id: int | None
    login: str
    role: Role
    #: The id of the API token used, if any: which of someone's tokens did it.
    token_id: str | None = None

    @property
    def is_service(self) -> bool:
        """Tell whether this is the configured service token rather than a person."""
        return self.account_id is None and self.login == SERVICE_LOGIN


#: The configured ``ApiSettings.token``: the admin of the service, not a person.
SERVICE = Principal(None, SERVICE_LOGIN, Role.ADMIN)
#: The command line, run by whoever may open the database: the admin.
CLI = Principal(None, CLI_LOGIN, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account as listed: never its password hash; the mobile only masked in its repr."""

    id: int
    login: str
    display_name: str
    mobile: str = field(repr=False)
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    #: How many tokens of the account work (not revoked).
    tokens: int = 0

    @property
    def masked_mobile(self) -> str:
        """Return the mobile as it may be shown or logged: 138****5678."""
        return mask_mobile(self.mobile)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """One API token as listed: its id and label, never the token or its hash."""

    token_id: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def mask_mobile(mobile: str) -> str:
    """Hide the middle of a mobile number the way the logs do (138****5678)."""
    return mask_phone_numbers(mobile)


def check_login(login: str) -> str:
    """Return the login lower-cased; refuse anything but 1–32 of a-z 0-9 . _ - starting with a letter or digit."""
    normal = login.strip().lower()
    if not LOGIN.fullmatch(normal):
        raise InvalidField("login", login, "use 1–32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    if normal in RESERVED_LOGINS:
        raise InvalidField("login", login, f"reserved (one of {', '.join(sorted(RESERVED_LOGINS))})")
    return normal


def check_display_name(name: str) -> str:
    """Return the display name trimmed: 1–64 characters, no control characters."""
    trimmed = name.strip()
    if not trimmed or len(trimmed) > 64 or CONTROL.search(trimmed):
        raise InvalidField("display name", name, "use 1–64 characters, no control characters")
    return trimmed


def check_mobile(mobile: str) -> str:
    """Return a mainland mobile as 11 digits (spaces, dashes and a +86 prefix dropped), or "" for none."""
    digits = re.sub(r"[\s-]", "", mobile)
    digits = re.sub(r"^(\+86|0086)", "", digits)
    if digits and not MOBILE.fullmatch(digits):
        raise InvalidField("mobile", mobile, "not a mainland mobile number (11 digits, 1[3-9]…), or leave it empty")
    return digits


def check_role(role: str) -> Role:
    """Return the role named ``role``."""
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise InvalidField("role", role, f"use one of {', '.join(r.value for r in Role)}") from None


def check_password(password: str) -> str:
    """Refuse a password shorter than 8 or longer than 1024 characters (the value is never echoed)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidField("password", None, f"too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidField("password", None, f"too long: use at most {MAX_PASSWORD} characters")
    return password
