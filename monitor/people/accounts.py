"""Managing accounts: add, list, disable, reset a password, change a role, issue and revoke tokens.

Every change is one transaction that also records who made it in the activity log
(``account_added``, ``password_reset``…, with ``"actor"``), and no event nor row ever holds a
password, a token or a whole mobile number. The CLI uses it today, the admin API later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from monitor.clock import Clock
from monitor.people import tokens
from monitor.people.audit import activity
from monitor.people.errors import AccountDisabled, InvalidField, LoginTaken, UnknownAccount, UnknownToken
from monitor.people.model import (
    AccountInfo,
    Principal,
    Role,
    TokenInfo,
    check_display_name,
    check_login,
    check_mobile,
    check_password,
    check_role,
    mask_mobile,
)
from monitor.people.passwords import Passwords
from monitor.people.store import Accounts
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.people")
MAX_LABEL = 64


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: ``token`` is shown once and is nowhere else (only its digest is stored)."""

    token: str
    token_id: str
    login: str
    label: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id!r}, login={self.login!r}, label={self.label!r})"


def account_info(row: Any) -> AccountInfo:
    """Turn a listed account row into an :class:`AccountInfo`."""
    return AccountInfo(
        id=row.id,
        login=row.login,
        display_name=row.display_name,
        mobile=row.mobile,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tokens=getattr(row, "tokens", 0),
    )


class People:
    """Accounts and tokens on a store, changes attributed to the principal passed as ``by``."""

    def __init__(self, store: Store, clock: Clock, passwords: Passwords | None = None) -> None:
        self.store = store
        self.clock = clock
        self.passwords = passwords or Passwords()

    def _account(self, accounts: Accounts, login: str) -> Any:
        row = accounts.by_login(login.strip().lower())
        if row is None:
            raise UnknownAccount(login)
        return row

    def _record(self, uow: UnitOfWork, event: str, by: Principal, row: Any, **data: Any) -> None:
        uow.record([activity(event, self.clock.now(), by, account=row.login, **data)])
        log.info(f"people.{event}", login=row.login, by=by.login, **data)

    # -- accounts -------------------------------------------------------------------------

    def add(
        self, login: str, password: str, *, by: Principal, display_name: str | None = None, mobile: str = "",
        role: Role | str = Role.VIEWER,
    ) -> AccountInfo:  # fmt: skip
        """Add an account; every field is checked first, the password hashed (argon2id)."""
        normal = check_login(login)
        name = check_display_name(display_name if display_name is not None else normal)
        phone = check_mobile(mobile)
        chosen = check_role(str(role))
        hashed = self.passwords.hash(check_password(password))
        now = self.clock.now()
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = {"login": normal, "display_name": name, "mobile": phone, "role": chosen.value, "disabled": False,
                   "password_hash": hashed, "created_at": now, "updated_at": now}  # fmt: skip
            account_id = accounts.insert(row)
            if account_id is None:
                raise LoginTaken(normal)
            added = accounts.by_id(account_id)
            self._record(uow, "account_added", by, added, role=chosen.value, mobile=mask_mobile(phone))
            return account_info(added)

    def accounts(self) -> list[AccountInfo]:
        """Return every account by login, with how many working tokens each has."""
        with self.store.begin() as uow:
            return [account_info(r) for r in Accounts(uow).listed()]

    def get(self, login: str) -> AccountInfo:
        """Return one account."""
        with self.store.begin() as uow:
            return account_info(self._account(Accounts(uow), login))

    def set_disabled(self, login: str, disabled: bool, *, by: Principal) -> AccountInfo:
        """Disable an account (its tokens and password stop working at once) or enable it again."""
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            if row.disabled != disabled:
                accounts.update(row.id, disabled=disabled, updated_at=self.clock.now())
                self._record(uow, "account_disabled" if disabled else "account_enabled", by, row)
            return account_info(accounts.by_id(row.id))

    def set_role(self, login: str, role: Role | str, *, by: Principal) -> AccountInfo:
        """Change an account's role."""
        chosen = check_role(str(role))
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            if row.role != chosen.value:
                accounts.update(row.id, role=chosen.value, updated_at=self.clock.now())
                self._record(uow, "account_role_changed", by, row, role_from=row.role, role_to=chosen.value)
            return account_info(accounts.by_id(row.id))

    def set_profile(
        self, login: str, *, by: Principal, display_name: str | None = None, mobile: str | None = None
    ) -> AccountInfo:
        """Change an account's display name or mobile."""
        values: dict[str, Any] = {}
        if display_name is not None:
            values["display_name"] = check_display_name(display_name)
        if mobile is not None:
            values["mobile"] = check_mobile(mobile)
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            if values:
                accounts.update(row.id, **values, updated_at=self.clock.now())
                self._record(uow, "account_changed", by, row, fields=sorted(values))
            return account_info(accounts.by_id(row.id))

    def reset_password(self, login: str, password: str, *, by: Principal, revoke_tokens: bool = False) -> int:
        """Give an account a new password (hashed); return how many of its tokens were revoked.

        Its tokens keep working unless ``revoke_tokens``: then every one of them (console sessions
        and API tokens) is revoked in the same transaction — the console's reset does this, since a
        password is reset because someone else may know it.
        """
        hashed = self.passwords.hash(check_password(password))
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            now = self.clock.now()
            accounts.update(row.id, password_hash=hashed, updated_at=now)
            revoked = accounts.revoke_all(row.id, now) if revoke_tokens else 0
            self._record(uow, "password_reset", by, row, tokens_revoked=revoked)
            return revoked

    # -- tokens ---------------------------------------------------------------------------

    def issue_token(self, login: str, *, by: Principal, label: str = "") -> IssuedToken:
        """Make a new API token for an enabled account; the token is in the result only, never stored."""
        label = label.strip()
        if len(label) > MAX_LABEL:
            raise InvalidField("label", label, f"use at most {MAX_LABEL} characters")
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            if row.disabled:
                raise AccountDisabled(row.login)
            while True:  # a token id is 48 random bits: taken ones are astronomically rare, but retried
                token = tokens.new_token()
                token_id = tokens.token_id(token)
                assert token_id is not None
                stored = {"account_id": row.id, "token_id": token_id, "token_hash": tokens.digest(token),
                          "label": label, "created_at": self.clock.now(), "revoked": False}  # fmt: skip
                if accounts.insert_token(stored) is not None:
                    break
            self._record(uow, "token_issued", by, row, token_id=token_id, label=label)
            return IssuedToken(token, token_id, row.login, label)

    def revoke_token(self, login: str, token_id: str, *, by: Principal) -> None:
        """Revoke one token of an account: requests with it are refused from now on."""
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            if not accounts.revoke(row.id, token_id.strip(), self.clock.now()):
                raise UnknownToken(token_id, row.login)
            self._record(uow, "token_revoked", by, row, token_id=token_id.strip())

    def tokens(self, login: str) -> list[TokenInfo]:
        """Return an account's tokens, oldest first (ids and labels; never a token)."""
        with self.store.begin() as uow:
            accounts = Accounts(uow)
            row = self._account(accounts, login)
            return [TokenInfo(t.token_id, t.label, t.created_at, t.last_used_at, t.revoked)
                    for t in accounts.tokens_of(row.id)]  # fmt: skip
