"""Fixtures of the people tests: accounts on a migrated store (SQLite and PostgreSQL), a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from monitor.clock import SimulatedClock
from monitor.people.accounts import People
from monitor.people.passwords import Passwords
from monitor.store.store import Store

START = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
#: Cheap argon2id parameters: the tests hash dozens of passwords on a shared 2-core machine.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(CHEAP)


@pytest.fixture
def people(store: Store, clock: SimulatedClock, passwords: Passwords) -> People:
    return People(store, clock, passwords)
