"""The SQL of the ``account`` and ``api_token`` tables, run on a unit of work's connection.

It lives in the people room rather than in :mod:`monitor.store.store`: these two tables are
read and written by nothing else, and keeping their queries beside the code that checks
them keeps the shared store module about parcels. Like :mod:`monitor.store.views` it takes
the connection of a transaction it does not own (``Accounts(uow)``), so an account change
and the activity row recording who made it commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.store.models import Account, ApiToken
from monitor.store.store import UnitOfWork

ACC = Account.__table__
TOK = ApiToken.__table__
#: Every column of an account but its password hash, which only :meth:`Accounts.password_of` reads.
LISTED = tuple(c for c in ACC.c if c.name != "password_hash")


class Accounts:
    """Queries about accounts and their tokens, inside one transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.conn = uow.conn

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.uow.dialect == "postgresql" else sqlite.insert)(table)

    # -- accounts -------------------------------------------------------------------------

    def insert(self, row: dict[str, Any]) -> int | None:
        """Add an account; None (nothing inserted) when its login is taken."""
        stmt = self._insert(ACC).values(**row).on_conflict_do_nothing(index_elements=["login"])
        return self.conn.execute(stmt.returning(ACC.c.id)).scalar()

    def by_login(self, login: str) -> Row[Any] | None:
        """Return an account (without its password hash) by its lower-cased login."""
        return self.conn.execute(select(*LISTED).where(ACC.c.login == login)).first()

    def by_id(self, account_id: int) -> Row[Any] | None:
        """Return an account (without its password hash) by id."""
        return self.conn.execute(select(*LISTED).where(ACC.c.id == account_id)).first()

    def password_of(self, login: str) -> Row[Any] | None:
        """Return (id, login, role, disabled, password_hash) of an account, for a login check."""
        cols = (ACC.c.id, ACC.c.login, ACC.c.role, ACC.c.disabled, ACC.c.password_hash)
        return self.conn.execute(select(*cols).where(ACC.c.login == login)).first()

    def listed(self) -> list[Row[Any]]:
        """Return every account by login, with ``tokens``: how many of its tokens are not revoked."""
        working = (
            select(TOK.c.account_id, func.count().label("n"))
            .where(TOK.c.revoked.is_(False))
            .group_by(TOK.c.account_id)
            .subquery()
        )
        stmt = (
            select(*LISTED, func.coalesce(working.c.n, 0).label("tokens"))
            .outerjoin(working, working.c.account_id == ACC.c.id)
            .order_by(ACC.c.login)
        )
        return list(self.conn.execute(stmt))

    def update(self, account_id: int, **values: Any) -> None:
        """Change columns of an account (``updated_at`` among them)."""
        self.conn.execute(update(ACC).where(ACC.c.id == account_id).values(**values))

    def update_password_hash(self, account_id: int, old: str, new: str) -> bool:
        """Replace a password hash made with old parameters, unless the password changed meanwhile."""
        stmt = update(ACC).where(ACC.c.id == account_id, ACC.c.password_hash == old).values(password_hash=new)
        return bool(self.conn.execute(stmt).rowcount)

    # -- tokens ---------------------------------------------------------------------------

    def insert_token(self, row: dict[str, Any]) -> int | None:
        """Add a token; None (nothing inserted) when its id is taken already."""
        stmt = self._insert(TOK).values(**row).on_conflict_do_nothing(index_elements=["token_id"])
        return self.conn.execute(stmt.returning(TOK.c.id)).scalar()

    def tokens_of(self, account_id: int) -> list[Row[Any]]:
        """Return an account's tokens (without their digests), oldest first."""
        cols = (TOK.c.token_id, TOK.c.label, TOK.c.created_at, TOK.c.last_used_at, TOK.c.revoked)
        return list(self.conn.execute(select(*cols).where(TOK.c.account_id == account_id).order_by(TOK.c.id)))

    def token(self, token_id: str) -> Row[Any] | None:
        """Return a token by id with what authenticating needs of its account."""
        stmt = (
            select(
                TOK.c.token_id,
                TOK.c.token_hash,
                TOK.c.revoked,
                TOK.c.last_used_at,
                ACC.c.id.label("account_id"),
                ACC.c.login,
                ACC.c.role,
                ACC.c.disabled,
            )
            .join(ACC, ACC.c.id == TOK.c.account_id)
            .where(TOK.c.token_id == token_id)
        )
        return self.conn.execute(stmt).first()

    def revoke(self, account_id: int, token_id: str, at: datetime) -> bool:
        """Revoke a token of an account; False if it has no such token (revoking twice keeps the first time)."""
        mine = (TOK.c.account_id == account_id, TOK.c.token_id == token_id)
        self.conn.execute(update(TOK).where(*mine, TOK.c.revoked.is_(False)).values(revoked=True, revoked_at=at))
        return self.conn.execute(select(TOK.c.id).where(*mine)).first() is not None

    def revoke_all(self, account_id: int, at: datetime) -> int:
        """Revoke every working token of an account; return how many."""
        working = (TOK.c.account_id == account_id, TOK.c.revoked.is_(False))
        return self.conn.execute(update(TOK).where(*working).values(revoked=True, revoked_at=at)).rowcount or 0

    def delete_finished_tokens(self, label: str, revoked_before: datetime, idle_before: datetime) -> int:
        """Delete tokens labelled ``label`` revoked before ``revoked_before`` or unused since ``idle_before``.

        For console sessions, which end by themselves: their rows would otherwise pile up, one a login.
        A row still in use is never touched; a token never used is judged by when it was made.
        """
        gone = or_(
            and_(TOK.c.revoked.is_(True), func.coalesce(TOK.c.revoked_at, TOK.c.created_at) < revoked_before),
            func.coalesce(TOK.c.last_used_at, TOK.c.created_at) < idle_before,
        )
        return self.conn.execute(delete(TOK).where(TOK.c.label == label, gone)).rowcount or 0

    def touch(self, token_ids: Sequence[str], at: datetime, stale_before: datetime) -> int:
        """Set ``last_used_at`` of tokens last used before ``stale_before`` (or never); return how many.

        Conditional, so replicas touching one token in the same minute write it once.
        """
        stale = or_(TOK.c.last_used_at.is_(None), TOK.c.last_used_at < stale_before)
        stmt = update(TOK).where(TOK.c.token_id.in_(list(token_ids)), stale).values(last_used_at=at)
        return self.conn.execute(stmt).rowcount or 0
