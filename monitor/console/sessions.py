"""Console sessions: a login becomes a server-side session, checked on every page; failures lock a login out.

A session *is* an API token of the account (``api_token`` row, label ``console``): the cookie
carries the token, the store keeps only its SHA-256. So a session is revoked by logout, ends
when the account is disabled, survives a restart and works on every replica — with no signing
secret to configure, share or leak, and no new table. Its CSRF token is an HMAC of the session
token, so it needs no storage either and is compared in constant time.

Idle sessions end after :data:`IDLE` (``last_used_at``, written at most once a minute).
Failed logins are activity rows (``console_login_failed``, with the login tried); :data:`LOCK_AFTER`
of them within :data:`LOCK_FOR` lock that login — whether or not it exists, so the answer tells
nothing — until the window passes. Times are the wall clock: security does not follow a
simulated business clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from monitor.people import tokens
from monitor.people.accounts import People
from monitor.people.auth import TOUCH_EVERY, authenticate
from monitor.people.model import Principal, Role
from monitor.people.store import Accounts
from monitor.store.store import ACT, Store

log = structlog.get_logger("monitor.console")

COOKIE = "pm_session"
#: Double-submit cookie guarding the login form (there is no session yet to derive a token from).
LOGIN_COOKIE = "pm_login_csrf"
LABEL = "console"
IDLE = timedelta(hours=12)
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
FAILED = "console_login_failed"
#: ``PARCEL_MONITOR_CONSOLE_SECURE_COOKIE``: ``auto`` (Secure when the request came over https), ``always``, ``never``.
SECURE_ENV = "PARCEL_MONITOR_CONSOLE_SECURE_COOKIE"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in person: who, and the token their forms must send back."""

    principal: Principal
    csrf: str


def csrf_of(token: str) -> str:
    """Return the CSRF token of a session token (an HMAC: nothing to store, nothing to guess)."""
    return hmac.new(token.encode(), b"parcel-monitor console csrf", hashlib.sha256).hexdigest()


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Compare a form's (or header's) CSRF token with the session's in constant time."""
    return hmac.compare_digest((presented or "").encode(), session.csrf.encode())


def sign(session: Session, message: str) -> str:
    """Return the signature of a message the console redirects with (keyed by the session's CSRF token)."""
    return hmac.new(session.csrf.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def signed(session: Session, message: str, signature: str | None) -> bool:
    """Tell whether ``signature`` is this session's for ``message`` (constant time)."""
    return hmac.compare_digest(sign(session, message).encode(), (signature or "").encode())


def secure_cookie(scheme: str) -> bool:
    """Tell whether cookies get the Secure flag (``auto``: when served over https)."""
    mode = os.environ.get(SECURE_ENV, "auto").strip().lower()
    return mode == "always" or (mode != "never" and scheme == "https")


def new_login_csrf() -> str:
    """Return a random token for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)


def _normal(login: str) -> str:
    return login.strip().lower()[:64]


def failures(store: Store, login: str, now: datetime) -> list[datetime]:
    """Return when ``login`` failed to log in within the lock window, oldest first (blocking)."""
    normal = _normal(login)
    stmt = select(ACT.c.at, ACT.c.data).where(ACT.c.event == FAILED, ACT.c.at > now - LOCK_FOR).order_by(ACT.c.id)
    with store.begin() as uow:
        rows = list(uow.conn.execute(stmt))
    return [r.at for r in rows if json.loads(r.data).get("login") == normal]


def locked_for(store: Store, login: str, now: datetime) -> timedelta | None:
    """Return how long ``login`` stays locked, or None (blocking)."""
    failed = failures(store, login, now)
    if len(failed) < LOCK_AFTER:
        return None
    return failed[-LOCK_AFTER] + LOCK_FOR - now


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login attempt gave: a session token, or why not (``locked`` says for how long)."""

    token: str | None = None
    principal: Principal | None = None
    locked: timedelta | None = None


def log_in(store: Store, login: str, password: str, now: datetime) -> LoginResult:
    """Check a login and password (unless locked); on success open a session, else count the failure (blocking)."""
    locked = locked_for(store, login, now)
    if locked is not None:
        log.info("console.login_locked")
        return LoginResult(locked=locked)
    principal = authenticate(store, login, password)
    if principal is None:
        with store.begin() as uow:
            uow.record([{"at": now, "event": FAILED, "parcel_id": None, "data": {"login": _normal(login)}}])
        log.info("console.login_failed")
        return LoginResult(locked=locked_for(store, login, now))
    issued = People(store, _Fixed(now)).issue_token(principal.login, by=principal, label=LABEL)
    with store.begin() as uow:
        Accounts(uow).touch([issued.token_id], now, now)
    log.info("console.login", login=principal.login)
    return LoginResult(token=issued.token, principal=Principal(principal.account_id, principal.login,
                                                               principal.role, issued.token_id))  # fmt: skip


def check(store: Store, token: str, now: datetime) -> Session | None:
    """Return the session of a cookie's token, or None: unknown, revoked, idle too long, or the account disabled.

    Blocking (one read; one write a minute to keep the session alive).
    """
    token_id = tokens.token_id(token)
    if token_id is None:
        return None
    with store.begin() as uow:
        row = Accounts(uow).token(token_id)
    if row is None or not tokens.matches(token, row.token_hash) or row.revoked or row.disabled:
        return None
    last = row.last_used_at
    if last is None or now - last > IDLE:
        with store.begin() as uow:
            Accounts(uow).revoke(row.account_id, token_id, now)
        log.info("console.session_expired", login=row.login)
        return None
    if now - last >= TOUCH_EVERY:
        with store.begin() as uow:
            Accounts(uow).touch([token_id], now, now - TOUCH_EVERY)
    return Session(Principal(row.account_id, row.login, Role(row.role), token_id), csrf_of(token))


def log_out(store: Store, session: Session, now: datetime) -> None:
    """Revoke the session's token: the cookie is worthless from now on, on every replica (blocking)."""
    principal = session.principal
    if principal.account_id is not None and principal.token_id is not None:
        with store.begin() as uow:
            Accounts(uow).revoke(principal.account_id, principal.token_id, now)
    log.info("console.logout", login=principal.login)


class _Fixed:
    """A clock stopped at one instant, for the account manager's timestamps."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def purge_sessions(store: Store, now: datetime) -> int:
    """Delete console sessions that ended (logged out, revoked, or idle past their limit); return how many.

    A session is an ``api_token`` row (label ``console``), one per login: without this the table
    grows for ever. Live sessions, and API tokens of any other label (revoked ones stay listed
    for the record), are kept. ``now`` is the wall clock the sessions are checked against.
    """
    with store.begin() as uow:
        deleted = Accounts(uow).delete_finished_tokens(LABEL, revoked_before=now, idle_before=now - IDLE)
    log.info("retention.sessions_purged", deleted=deleted)
    return deleted
