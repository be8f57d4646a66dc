"""Build the running service from settings: store, carriers, channels, monitor, poller.

Everything the daemon holds is made here, once, from validated settings and injected
clocks, so the daemon, the live demo and the tests assemble exactly the same parts. Two
clocks: ``clock`` is business time (deadlines, rules; simulated in the demo and replay),
``wall`` is the real time that remote parties check — DingTalk's and Feishu's signatures,
webhook and e-mail timestamps, carriers' request timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine

from carriers import registry as carrier_registry
from monitor.alerts.channels import catalog
from monitor.alerts.model import Channel
from monitor.alerts.timing import RateLimit
from monitor.clock import Clock, SystemClock
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.metrics import Metrics
from monitor.norms.model import NormBook
from monitor.polling import Poller
from monitor.polling.health import HealthBook
from monitor.polling.pacing import Sleep
from monitor.service import Monitor
from monitor.store.db import check_reachable, is_migrated, make_engine, safe_url, upgrade
from monitor.store.store import Store


@dataclass
class Runtime:
    """The parts of a running monitor, wired together."""

    settings: Settings
    clock: Clock
    engine: Engine
    store: Store
    adapters: dict[str, Any]
    channels: dict[str, Channel]
    monitor: Monitor
    poller: Poller
    metrics: Metrics
    plugin_failures: dict[str, str] = field(default_factory=dict)
    wall: Clock = field(default_factory=SystemClock)

    def close(self) -> None:
        """Stop the store's threads (after the work in hand) and release database connections."""
        self.store.close()


def build_adapters(settings: Settings, clock: Clock, http: httpx.AsyncClient,
                   environ: Mapping[str, str], wall: Clock | None = None,
                   ) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """Build one adapter per ``[carriers.<code>]`` table; an unknown or broken one is a ConfigError.

    Adapters get both clocks: ``clock`` for what they simulate (the sandbox's world), ``wall``
    for the timestamps they sign.
    """
    registry = carrier_registry.load()
    adapters: dict[str, Any] = {}
    for code, raw in settings.carriers.items():
        if code not in registry.adapters:
            known = ", ".join(sorted(registry.adapters))
            raise ConfigError(f"{settings.source}: carriers.{code}: no such carrier plugin (installed: {known})")
        context = {"clock": clock, "wall": wall or SystemClock(), "http": http, "environ": environ}
        try:
            adapters[code] = registry.adapters[code].factory(dict(raw), context)
        except ValueError as err:
            raise ConfigError(f"{settings.source}: carriers.{code}: {err}") from None
    return adapters, dict(registry.failures)


def build_channels(settings: Settings, wall: Clock, http: httpx.AsyncClient) -> dict[str, Channel]:
    """Build every configured alert channel on the wall clock: channels use it only for what receivers check."""
    options = {"http": http, "clock": wall, "language": settings.language, "link_base": settings.link_base}
    return {c.name: catalog.build(c.name, c.type, c.settings, **options) for c in settings.channels}


def build(
    settings: Settings,
    clock: Clock,
    http: httpx.AsyncClient,
    environ: Mapping[str, str],
    *,
    sleep: Sleep,
    migrate: bool = True,
    channels: Mapping[str, Channel] | None = None,
    adapters: Mapping[str, Any] | None = None,
    wall: Clock | None = None,
) -> Runtime:
    """Open the database (migrating it unless told not to) and wire the monitor.

    The store runs the daemon's database work on ``[database] threads`` threads of its own,
    so the event loop (the API, ``/healthz``, the refund webhook) never waits on the database;
    the monitor leaves the outbox and alert sending to the dispatch job (``defer_actions``).
    ``wall`` (default: the system clock) signs what leaves the process; ``clock`` runs the rules.
    """
    wall = wall or SystemClock()
    db = settings.database
    engine = make_engine(
        settings.database_url,
        busy_timeout=db.busy_timeout_seconds,
        statement_timeout=db.statement_timeout_seconds,
        lock_timeout=db.lock_timeout_seconds,
    )
    check_reachable(engine, settings.database_url)
    if migrate:
        upgrade(engine)
    elif not is_migrated(engine):
        engine.dispose()
        raise ConfigError(f"database.url: {safe_url(settings.database_url)} has no schema: "
                          "run `parcel-monitor db upgrade`, or start without --no-migrate")  # fmt: skip
    store = Store(engine, threads=db.threads)
    failures: dict[str, str] = {}
    if adapters is None:
        built, failures = build_adapters(settings, clock, http, environ, wall)
        adapters = built
    channels = dict(channels) if channels is not None else build_channels(settings, wall, http)
    limits = {c.name: RateLimit(c.rate_limit_per_minute) for c in settings.channels if c.rate_limit_per_minute}
    monitor = Monitor(store, settings.rules, clock, adapters, channels, settings.route, settings.quiet_hours, limits,
                      intercepts=settings.intercepts, tickets=settings.tickets,
                      norms=NormBook.load(store, settings.norms))  # fmt: skip
    monitor.defer_actions = True
    monitor.tickets.check_accounts(store)
    metrics = Metrics(store)
    health = HealthBook(store, clock, channels, settings.route)
    poller = Poller(store, clock, adapters, monitor, settings.polling, timezone=settings.timezone, sleep=sleep,
                    health=health, metrics=metrics, act_after_write=False, max_in_flight=32)  # fmt: skip
    return Runtime(settings, clock, engine, store, dict(adapters), channels, monitor, poller, metrics, failures, wall)
