"""Fixtures of the ticket tests: a real Monitor on a migrated store (SQLite and PostgreSQL), a simulated clock."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from carriers.sandbox import SandboxCarrier
from monitor.alerts.channels.console import RecordingChannel
from monitor.clock import SimulatedClock
from monitor.people.accounts import People
from monitor.people.passwords import Passwords
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from monitor.tickets.settings import TicketSettings
from tests.tickets.kit import START, MakeMonitor

#: Cheap argon2id parameters: the accounts' passwords do not matter here.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def people(store: Store, clock: SimulatedClock) -> People:
    return People(store, clock, Passwords(CHEAP))


@pytest.fixture
def make_monitor(store: Store, clock: SimulatedClock) -> MakeMonitor:
    """Build a Monitor as the daemon does, with ``[tickets]`` from keyword arguments."""

    def make(**tickets: Any) -> Monitor:
        settings = TicketSettings.model_validate(tickets)
        channels = {"rec": RecordingChannel("rec")}
        return Monitor(store, build_ruleset(), clock, {"sandbox": SandboxCarrier(clock)}, channels, tickets=settings)  # type: ignore[dict-item]

    return make
