"""Carrier health: a carrier that keeps failing is polled less, raises one alert, and recovers.

The state lives in the store (``carrier_health``) so a restart neither forgets an outage
nor alerts about it twice. Each failed poll round doubles the pause before the next try
(30 s up to 30 min); after ``DOWN_AFTER`` failed rounds in a row the carrier is *down* and
ops staff hear about it once; the first success brings it back *up* with a resolved notice.

Rejected credentials (``CarrierAuthError``, from a poll or an intercept call) put the carrier
*down* at once: intercepts of that carrier wait (paused) instead of calling it, and the first
successful call of any kind — a poll round, or an intercept retried as a probe once the pause
is over — makes their calls due again, so they resume by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from monitor.alerts.model import Alert, Channel
from monitor.alerts.routing import Route, resolve
from monitor.clock import Clock
from monitor.store.store import Store

log = structlog.get_logger("monitor.polling")

DOWN_AFTER = 3
BASE_PAUSE = timedelta(seconds=30)
MAX_PAUSE = timedelta(minutes=30)
#: ``last_success_at`` of a carrier that is up is written at most this often (not on every round).
SUCCESS_EVERY = timedelta(minutes=1)
RULE = "carrier_unavailable"
#: How ``last_error`` starts when the carrier rejected our credentials.
AUTH = "CarrierAuthError"


@dataclass(frozen=True, slots=True)
class Health:
    """One carrier's standing, as read from the store."""

    state: str = "up"
    failures: int = 0
    failing_since: datetime | None = None
    next_try_at: datetime | None = None
    last_error: str = ""
    alerted: str = "up"
    last_success_at: datetime | None = None


def pause(failures: int) -> timedelta:
    """Return how long to leave a carrier alone after ``failures`` failed rounds in a row."""
    return min(BASE_PAUSE * (2 ** max(failures - 1, 0)), MAX_PAUSE)


class HealthBook:
    """Read and update carrier health, and tell ops staff when a carrier goes down or comes back."""

    def __init__(self, store: Store, clock: Clock, channels: Mapping[str, Channel], route: Route | None) -> None:
        self.store = store
        self.clock = clock
        self.channels = dict(channels)
        self.route = route

    def get(self, carrier: str) -> Health:
        """Return a carrier's health (up when never seen failing)."""
        with self.store.begin() as uow:
            row = uow.carrier_health(carrier)
        if row is None:
            return Health()
        return Health(row.state, row.failures, row.failing_since, row.next_try_at, row.last_error, row.alerted,
                      row.last_success_at)  # fmt: skip

    def resting(self, carrier: str, now: datetime) -> bool:
        """Tell whether a failing carrier should be left alone for now."""
        health = self.get(carrier)
        return health.next_try_at is not None and health.next_try_at > now

    def paused(self, carrier: str, now: datetime) -> bool:
        """Tell whether the carrier rejected our credentials and its pause is not over (intercepts wait)."""
        health = self.get(carrier)
        resting = health.next_try_at is not None and health.next_try_at > now
        return health.state == "down" and health.last_error.startswith(AUTH) and resting

    def failed(self, carrier: str, error: str) -> Health:
        """Count a failed round (or call); return the new health. Rejected credentials are down at once."""
        now = self.clock.now()
        old = self.get(carrier)
        failures = old.failures + 1
        down = failures >= DOWN_AFTER or error.startswith(AUTH)
        new = Health(
            state="down" if down else "failing",
            failures=failures,
            failing_since=old.failing_since or now,
            next_try_at=now + pause(failures),
            last_error=error[:500],
            alerted=old.alerted,
            last_success_at=old.last_success_at,
        )
        self._save(carrier, new, now)
        if old.state != new.state:
            log.warning("carrier.failing" if new.state == "failing" else "carrier.down", carrier=carrier,
                        failures=failures, error=error[:200], retry_in_s=pause(failures).total_seconds())  # fmt: skip
        return new

    def succeeded(self, carrier: str) -> Health:
        """Count a good round (or call): the carrier is up again, and its waiting intercepts are due now.

        ``last_success_at`` (the 快递公司 page) is kept fresh to :data:`SUCCESS_EVERY`, so a carrier
        that is up costs one small write a minute, not one a round.
        """
        old = self.get(carrier)
        now = self.clock.now()
        if old.state == "up" and old.alerted == "up":
            if old.last_success_at is None or now - old.last_success_at >= SUCCESS_EVERY:
                with self.store.begin() as uow:
                    uow.save_carrier_health(carrier, last_success_at=now, updated_at=now)
                return replace(old, last_success_at=now)
            return old
        new = Health(alerted=old.alerted, failing_since=old.failing_since, last_error=old.last_error,
                     last_success_at=now)  # fmt: skip
        self._save(carrier, new, now)
        resumed = 0
        if old.state != "up":
            with self.store.begin() as uow:
                resumed = uow.requeue_intercepts(carrier, now)
        log.info("carrier.recovered", carrier=carrier, after_failures=old.failures, intercepts_resumed=resumed)
        return new

    async def announce(self, carrier: str) -> None:
        """Tell ops staff of a change they have not heard of yet (retried on the next round if it fails)."""
        health = await self.store.offload(self.get, carrier)
        wanted = "down" if health.state == "down" else "up"
        if wanted == health.alerted or self.route is None:
            return
        now = self.clock.now()
        # claimed before sending: of two senders (the poller, an intercept call) exactly one tells
        if not await self.store.transact(lambda uow: uow.claim_carrier_alert(carrier, health.alerted, wanted, now)):
            return
        alert = Alert(
            anomaly_id=0,
            rule=RULE,
            severity="critical",
            state="firing" if wanted == "down" else "resolved",
            carrier=carrier,
            tracking_no="",
            order_id="",
            shop="",
            opened_at=health.failing_since or self.clock.now(),
            detail=health.last_error[:200],
        )
        labels = {"rule": RULE, "severity": "critical", "carrier": carrier, "shop": ""}
        receivers = {r.receiver for r in resolve(self.route, labels) if r.receiver in self.channels}
        delivered = True
        for receiver in sorted(receivers):
            delivery = await self.channels[receiver].notify([alert])
            if not delivery.sent:
                delivered = False
                log.warning("carrier.alert_failed", carrier=carrier, channel=receiver, error=delivery.error)
        if not delivered:  # give the claim back: the next round tries again
            await self.store.transact(lambda uow: uow.claim_carrier_alert(carrier, wanted, health.alerted, now))

    def _save(self, carrier: str, h: Health, now: datetime) -> None:
        with self.store.begin() as uow:
            uow.save_carrier_health(
                carrier,
                state=h.state,
                failures=h.failures,
                failing_since=h.failing_since if h.state != "up" else None,
                next_try_at=h.next_try_at,
                last_error=h.last_error,
                alerted=h.alerted,
                last_success_at=h.last_success_at,
                updated_at=now,
            )
