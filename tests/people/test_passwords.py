"""Passwords: argon2id hashes, verify, rehash of old parameters, and a login check that does not tell who exists."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from monitor.people.accounts import People
from monitor.people.auth import authenticate
from monitor.people.errors import InvalidField
from monitor.people.model import CLI, Principal, Role
from monitor.people.passwords import Passwords
from monitor.store.store import Store

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that counts its verifications (how long a login check works)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def stored_hash(store: Store, login: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT password_hash FROM account WHERE login = :l"), {"l": login}).scalar_one()


def test_hashes_are_salted_argon2id_and_verify(passwords: Passwords) -> None:
    first, second = passwords.hash(PASSWORD), passwords.hash(PASSWORD)
    assert first.startswith("$argon2id$") and first != second and PASSWORD not in first
    assert passwords.verify(first, PASSWORD) and passwords.verify(second, PASSWORD)
    assert not passwords.verify(first, PASSWORD + "!")
    assert not passwords.verify("not a hash", PASSWORD)


def test_the_default_parameters_are_rfc_9106_low_memory() -> None:
    params = Passwords().hasher
    assert (params.time_cost, params.memory_cost, params.parallelism) == (3, 65536, 4)


def test_login_with_the_password(people: People, store: Store, passwords: Passwords) -> None:
    added = people.add("Li.Lei", PASSWORD, by=CLI, role="operator")
    assert authenticate(store, "li.lei", PASSWORD, passwords) == Principal(added.id, "li.lei", Role.OPERATOR)
    assert authenticate(store, "LI.LEI", PASSWORD, passwords) is not None  # logins are case-insensitive
    assert authenticate(store, "li.lei", "wrong password", passwords) is None


def test_an_old_hash_is_upgraded_at_the_next_good_login(store: Store, clock: Any) -> None:
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    People(store, clock, old).add("han", PASSWORD, by=CLI)
    before = stored_hash(store, "han")
    current = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert current.needs_rehash(before) and not old.needs_rehash(before)
    assert authenticate(store, "han", "wrong password", current) is None
    assert stored_hash(store, "han") == before  # a failed login changes nothing
    assert authenticate(store, "han", PASSWORD, current) is not None
    after = stored_hash(store, "han")
    assert after != before and "t=2" in after and not current.needs_rehash(after)
    assert authenticate(store, "han", PASSWORD, current) is not None


def test_an_unknown_login_costs_one_verification_like_a_known_one(people: People, store: Store) -> None:
    people.add("meimei", PASSWORD, by=CLI)
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    counted = Passwords(hasher)
    for login, password in (("meimei", "wrong password"), ("nobody", PASSWORD), ("meimei", PASSWORD)):
        hasher.verified = 0
        authenticate(store, login, password, counted)
        assert hasher.verified == 1, login


def test_a_disabled_account_cannot_log_in(people: People, store: Store, passwords: Passwords) -> None:
    people.add("lucy", PASSWORD, by=CLI)
    people.set_disabled("lucy", True, by=CLI)
    assert authenticate(store, "lucy", PASSWORD, passwords) is None
    people.set_disabled("lucy", False, by=CLI)
    assert authenticate(store, "lucy", PASSWORD, passwords) is not None


@pytest.mark.parametrize("bad", ["Qz7!pw1", "Qz" * 513])
def test_passwords_too_short_or_too_long_are_refused_without_echo(people: People, bad: str) -> None:
    with pytest.raises(InvalidField) as refused:
        people.add("jim", bad, by=CLI)
    assert refused.value.field == "password" and bad not in str(refused.value)
