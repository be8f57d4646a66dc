"""The ``pickup_rate_forecast`` alert: told once when a shop's forecast crosses its target, resolved once.

Every run (hourly in the daemon, at each local hour in replay) projects every shop
(:mod:`monitor.kpi.forecast`) and writes the result to ``pickup_forecast``. A shop whose
projected 30-day rate falls below its target (``[kpi] pickup_rate_target``, or the shop's own)
on some day of the horizon is *below*; ops staff hear about it through the route tree (labels
``rule = "pickup_rate_forecast"``, severity ``warning``, the shop; carrier empty) naming the day
and how many of the parcels pending now must be picked up in time to stay at target. While
it stays below nothing more is sent, however the figures move; when every day is back at or
above target a resolved notice goes to the routes that send resolved ones.

As with carrier health, ``alerted`` is claimed (a conditional update) before the alert goes
out, so two replicas never both send it. Each receiver that takes it is noted in ``told`` at
once; a receiver that failed (or a crash after the claim) is tried again by the next run, and
only the receivers not noted yet — the daemon runs this job once per cluster. The one window
left is a crash between a receiver's answer and the note: that receiver hears it twice. Quiet
hours hold it like any warning: it is not claimed until they end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

import structlog

from monitor.alerts.model import Alert, Channel
from monitor.alerts.routing import Route, resolve
from monitor.alerts.timing import QuietHours
from monitor.clock import Clock
from monitor.kpi.forecast import Forecast, ShopForecast, build_forecast
from monitor.store.forecast import ForecastStore
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.kpi")

RULE = "pickup_rate_forecast"
SEVERITY = "warning"
#: ``pickup_forecast.told`` once every receiver took the message (migration 0017).
ALL_TOLD = "*"


def describe(s: ShopForecast, language: str = "zh") -> str:
    """Say which day falls below target and how many pending parcels would keep the shop above it."""
    below = s.below
    if below is None or below.point is None:
        if language == "en":
            return f"30-day pickup rate forecast back at or above target {s.target:.1%}"
        return f"30天24小时揽收率预测已回到目标 {s.target:.1%} 以上"
    day = f"{below.day:%m-%d}"
    if language == "en":
        need = f"even all {below.pending} pending parcels in time would not"
        if below.needed is not None:
            need = f"{below.needed} of the {below.pending} parcels pending now picked up in time keep it at target"
        return f"30-day pickup rate projected {below.point:.1%} on {day}, below target {s.target:.1%}; {need}"
    need = (f"当前待揽收 {below.pending} 件中按时揽收 {below.needed} 件即可保持达标" if below.needed is not None
            else f"即使当前待揽收的 {below.pending} 件全部按时揽收也无法达标")  # fmt: skip
    return f"预计 {day} 30天24小时揽收率 {below.point:.1%}，低于目标 {s.target:.1%}；{need}"


class ForecastWatch:
    """Project every shop's pickup rate and tell ops staff when one crosses its target, once."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        tz: tzinfo,
        target: Callable[[str], float],
        channels: Mapping[str, Channel],
        route: Route | None,
        quiet_hours: QuietHours | None = None,
        language: str = "zh",
    ) -> None:
        self.store = store
        self.clock = clock
        self.tz = tz
        self.target = target
        self.channels = dict(channels)
        self.route = route
        self.quiet_hours = quiet_hours
        self.language = language

    async def run(self) -> int:
        """Project, save, and send the crossings not told yet; return how many alerts went out."""
        forecast: Forecast = await self.store.offload(build_forecast, self.store, self.clock, self.tz, self.target)
        now = self.clock.now()
        told = await self.store.transact(lambda uow: self._save(uow, forecast, now))
        sent = 0
        for s in forecast.shops:
            wanted = "below" if s.below is not None else "ok"
            alerted, receivers = told.get(s.shop, ("ok", ALL_TOLD))
            if wanted != alerted:
                sent += await self._tell(s, alerted, wanted, now)
            elif receivers != ALL_TOLD:  # this message has not reached every receiver yet: the rest only
                sent += await self._tell(s, alerted, wanted, now, done=set(receivers.split(",")) - {""})
        return sent

    @staticmethod
    def _save(uow: UnitOfWork, forecast: Forecast, now: datetime) -> dict[str, tuple[str, str]]:
        """Write each shop's latest figures; return what each was last told, and which receivers took it."""
        fs = ForecastStore(uow.conn, uow.dialect)
        before = fs.states()
        for s in forecast.shops:
            below = s.below
            old = before.get(s.shop)
            since = old.since if old is not None and old.state == "below" and below is not None else None
            fs.save(s.shop, state="below" if below else "ok", below_day=below.day if below else None,
                    point=below.point if below else None, target=s.target,
                    needed=below.needed if below else None, pending=s.pending,
                    since=since or (now if below else None), updated_at=now)  # fmt: skip
        return {shop: (row.alerted, row.told) for shop, row in before.items()}

    async def _mark(self, shop: str, alerted: str, receiver: str) -> None:
        def mark(uow: UnitOfWork) -> None:
            fs = ForecastStore(uow.conn, uow.dialect)
            if receiver == ALL_TOLD:
                fs.mark_all_told(shop, alerted)
            else:
                fs.mark_told(shop, alerted, receiver)

        await self.store.transact(mark)

    async def _claim(self, shop: str, told: str, telling: str, now: datetime) -> bool:
        return await self.store.transact(
            lambda uow: ForecastStore(uow.conn, uow.dialect).claim(shop, told, telling, now)
        )

    async def _tell(self, s: ShopForecast, told: str, wanted: str, now: datetime, done: set[str] | None = None) -> int:
        """Send ``wanted`` to the route's receivers; ``done`` (a retry): those that took it already.

        A new crossing is claimed first (``alerted`` moved, no receiver told). Each receiver that
        takes the message is noted at once, so a receiver that failed is tried again by the next
        run, alone — the others are not told twice — and a crash after the claim loses nothing.
        """
        if self.route is None:
            return 0
        if self.quiet_hours is not None and not self.quiet_hours.allows(now, SEVERITY):
            return 0  # held like any warning: the first run after quiet hours claims it
        if done is None:
            if not await self._claim(s.shop, told, wanted, now):
                return 0
            done = set()
        firing = wanted == "below"
        labels = {"rule": RULE, "severity": SEVERITY, "carrier": "", "shop": s.shop}
        routes = [r for r in resolve(self.route, labels) if r.receiver in self.channels]
        receivers = sorted({r.receiver for r in routes if firing or r.send_resolved})
        detail = describe(s, self.language)
        state = "firing" if firing else "resolved"
        alert = Alert(anomaly_id=0, rule=RULE, severity=SEVERITY, state=state, carrier="", tracking_no="",
                      order_id="", shop=s.shop, opened_at=now, detail=detail[:200])  # fmt: skip
        delivered = True
        for receiver in (r for r in receivers if r not in done):
            delivery = await self.channels[receiver].notify([alert])
            if delivery.sent:
                await self._mark(s.shop, wanted, receiver)
            else:
                delivered = False
                log.warning("forecast.alert_failed", shop=s.shop, channel=receiver, error=delivery.error)
        if not delivered:  # the claim stays: the next run tries the receivers that did not take it
            return 0
        await self._mark(s.shop, wanted, ALL_TOLD)
        below = s.below
        data: dict[str, Any] = {"shop": s.shop, "rule": RULE, "status": "firing" if firing else "resolved",
                                "target": s.target, "channels": receivers}  # fmt: skip
        if below is not None:
            data |= {"day": below.day.isoformat(), "point": round(below.point or 0, 4), "needed": below.needed,
                     "pending": below.pending}  # fmt: skip
        await self.store.transact(lambda uow: uow.record([{"at": now, "event": RULE, "parcel_id": None, "data": data}]))
        event = "forecast.below_target" if firing else "forecast.back_on_target"
        log.warning(event, shop=s.shop, day=data.get("day"), point=data.get("point"), target=s.target,
                    needed=data.get("needed"))  # fmt: skip
        return 1
