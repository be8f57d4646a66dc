"""Who is calling: a bearer token → a :class:`~monitor.people.model.Principal`; a login and password → one too.

Bearer tokens, in order: the configured service token (``ApiSettings.token``) is the
:data:`~monitor.people.model.SERVICE` principal (role admin); a token of ours (``pm_…``) is
its account's, refused when the token is revoked or the account disabled; anything else is
refused. Every comparison is :func:`hmac.compare_digest`, and a token whose id is unknown
is compared against a dummy digest, so a wrong token costs the time a right one does.

A token's ``last_used_at`` is written at most once a minute per token, by a background
task: a request never waits for that write (nor for SQLite's write lock).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime, timedelta

import structlog

from monitor.clock import Clock
from monitor.people import tokens
from monitor.people.model import SERVICE, Principal, Role
from monitor.people.passwords import Passwords
from monitor.people.store import Accounts
from monitor.store.store import BACKGROUND, Store

log = structlog.get_logger("monitor.people")
#: ``last_used_at`` is exact to this much: a token used all day costs one write a minute.
TOUCH_EVERY = timedelta(minutes=1)


class TokenAuth:
    """Authenticate bearer tokens against the service token and the ``api_token`` table."""

    def __init__(self, store: Store, clock: Clock, service_token: str | None) -> None:
        self.store = store
        self.clock = clock
        self.service_token = service_token
        self._touched: dict[str, datetime] = {}  # token id → when we last queued its write
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self, presented: str) -> tuple[Principal | None, bool]:
        """Return (the principal of ``presented`` or None, whether its ``last_used_at`` is due a write).

        Blocking (one indexed read): async callers use :meth:`authenticate`.
        """
        service = self.service_token or ""
        is_service = hmac.compare_digest(presented.encode(), service.encode()) and bool(service)
        token_id = tokens.token_id(presented)
        row = None
        if token_id is not None:
            with self.store.begin() as uow:
                row = Accounts(uow).token(token_id)
        good = tokens.matches(presented, row.token_hash if row is not None else None)
        if is_service:
            return SERVICE, False
        if row is None or not good:
            return None, False
        if row.revoked or row.disabled:
            log.info("auth.token_refused", token_id=token_id, reason="revoked" if row.revoked else "disabled")
            return None, False
        principal = Principal(row.account_id, row.login, Role(row.role), token_id)
        now = self.clock.now()
        due = row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY
        return principal, due

    async def authenticate(self, presented: str) -> Principal | None:
        """Return the principal of a bearer token, or None; queue its ``last_used_at`` write when due."""
        principal, due = await self.store.offload(self.check, presented)
        if principal is not None and due and principal.token_id is not None:
            self._queue_touch(principal.token_id)
        return principal

    def _queue_touch(self, token_id: str) -> None:
        now = self.clock.now()
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_EVERY:
            return  # a write for this minute is queued or done already
        self._touched[token_id] = now
        task = asyncio.get_running_loop().create_task(self._touch(token_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, token_id: str) -> None:
        BACKGROUND.set(True)  # this task's own context: the store runs it after requests' transactions
        now = self.clock.now()
        try:
            await self.store.transact(lambda uow: Accounts(uow).touch([token_id], now, now - TOUCH_EVERY))
        except Exception as err:  # noqa: BLE001 - a lost last_used_at must never fail anything; said once
            self._touched.pop(token_id, None)
            log.warning("auth.touch_failed", error=type(err).__name__)

    async def drain(self) -> None:
        """Wait for queued ``last_used_at`` writes (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def authenticate(store: Store, login: str, password: str, passwords: Passwords | None = None) -> Principal | None:
    """Return the principal of a login and password, or None; the time taken does not tell whether the login exists.

    An unknown login verifies against a dummy hash; a disabled account verifies too, then is
    refused. A good password whose hash has old parameters is hashed again. Blocking (~50 ms
    of argon2): async callers run it with ``store.offload``.
    """
    passwords = passwords or Passwords()
    normal = login.strip().lower()
    with store.begin() as uow:
        row = Accounts(uow).password_of(normal)
    if row is None:
        passwords.verify_nobody(password)
        return None
    if not passwords.verify(row.password_hash, password) or row.disabled:
        return None
    if passwords.needs_rehash(row.password_hash):
        rehashed = passwords.hash(password)
        with store.begin() as uow:
            Accounts(uow).update_password_hash(row.id, row.password_hash, rehashed)
    return Principal(row.id, row.login, Role(row.role))
