"""The alert pipeline: route → group → wait → (quiet hours, rate limit) → send → log.

The outbox's ``alert`` action routes a new anomaly and queues one notification per
receiver in the notification log; ``alert_resolved`` queues resolved notices for the
receivers that were told it was firing. :meth:`Notifier.flush` then sends each due group
as one message. Nothing lives only in memory but the rate-limit budget: a restart resumes
from the log, never re-sends what it marked sent and never drops what was due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.actions.outbox import DONE, Outcome, backoff
from monitor.alerts.model import Alert, Channel
from monitor.alerts.routing import LABELS, Route, resolve
from monitor.alerts.timing import QuietHours, RateLimit
from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store, UnitOfWork
from monitor.store.types import UTCDateTime

_TIME = UTCDateTime()

log = structlog.get_logger("monitor.alerts")
MAX_ATTEMPTS = 12
#: How long a claimed group is this sender's: more than a channel's timeout and retries.
SEND_LEASE = timedelta(minutes=2)


class Notifier:
    """Route anomalies to receivers, and send due groups through their channels."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        channels: Mapping[str, Channel],
        route: Route,
        quiet_hours: QuietHours | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.channels = dict(channels)
        self.route = route
        self.quiet_hours = quiet_hours
        self.rate_limits = dict(rate_limits or {})
        #: No route sends open anomalies again: a flush skips the repeat pass (it costs what is due, not what exists).
        self.repeats = repeats(route)
        #: ``explain(row) -> (usual seconds, samples) | None``: the learned norm a slow_for_route alert quotes.
        self.explain: Callable[[Any], tuple[float, int] | None] | None = None

    async def __call__(self, action: Any) -> Outcome:
        """Outbox handler for ``alert``: queue a firing notice per receiver the route picks."""
        return await self.store.transact(lambda uow: self._firing(uow, action))

    def _firing(self, uow: UnitOfWork, action: Any) -> Outcome:
        now = self.clock.now()
        anomaly = uow.anomaly(action.anomaly_id)
        parcel = uow.parcel(action.parcel_id)
        labels = {
            "rule": anomaly.rule,
            "severity": anomaly.severity,
            "carrier": parcel.carrier,
            "shop": parcel.shop,
        }
        for route in resolve(self.route, labels) if self.channels else []:
            self._queue(uow, route, anomaly, "firing", route.group_key(labels), now)
        uow.finish_action(action.id, now)
        return DONE

    async def resolved(self, action: Any) -> Outcome:
        """Outbox handler for ``alert_resolved``: cancel unsent notices, queue resolved ones."""
        return await self.store.transact(lambda uow: self._resolved(uow, action))

    def _resolved(self, uow: UnitOfWork, action: Any) -> Outcome:
        now = self.clock.now()
        anomaly = uow.anomaly(action.anomaly_id)
        for n in uow.notifications_of(anomaly.id):
            if n.kind != "firing":
                continue
            if n.state == "pending":  # cleared before anyone was told: say nothing
                uow.update_notifications([n.id], state="cancelled")
            elif n.state == "sent" and n.send_resolved:
                row = {"receiver": n.receiver, "group_key": n.group_key, "severity": n.severity}
                self._queue(uow, None, anomaly, "resolved", n.group_key, now, row)
        uow.finish_action(action.id, now)
        return DONE

    def _queue(
        self, uow: UnitOfWork, route: Route | None, anomaly: Any, kind: str, key: str, now: datetime,
        known: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        receiver = route.receiver if route else known["receiver"]  # type: ignore[index]
        if receiver not in self.channels:
            return
        due = self._due(uow, route, receiver, key, now)
        uow.insert_notification(
            {
                "anomaly_id": anomaly.id,
                "receiver": receiver,
                "kind": kind,
                "group_key": key,
                "severity": anomaly.severity,
                "due_at": due,
                "repeat_seconds": int(route.repeat_interval.total_seconds())
                if route and route.repeat_interval
                else None,
                "send_resolved": route.send_resolved if route else False,
                "created_at": now,
            }
        )

    def _due(self, uow: UnitOfWork, route: Route | None, receiver: str, key: str, now: datetime) -> datetime:
        """Join the group's pending batch, or wait group_wait (new group) or group_interval (busy group)."""
        pending, last_sent = uow.group_timing(receiver, key)
        if pending is not None:
            return pending
        if route is None:
            return now
        if last_sent is None or last_sent + route.group_interval <= now:
            return now + route.group_wait
        return last_sent + route.group_interval

    async def flush(self) -> int:
        """Claim every due notification, send each group as one message; return how many messages went out.

        The claim (a lease: ``sending`` until ``due_at``) makes this sender the only one for
        those rows, in this process or a replica; a sender killed mid-send leaves them to be
        claimed again when the lease ends (at-least-once for that crash only).
        """
        now = self.clock.now()
        lease = now + SEND_LEASE
        due, done = await self.store.transact(lambda uow: self._claim(uow, now, lease, self.repeats))
        groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for n in due:
            groups[(n.receiver, n.group_key, n.kind)].append(n)
        sent = 0
        for (receiver, _, kind), rows in groups.items():
            sent += await self._send(receiver, kind, rows, now, lease, done)
        return sent

    @staticmethod
    def _claim(
        uow: UnitOfWork, now: datetime, lease: datetime, repeats: bool
    ) -> tuple[list[Any], dict[int, list[str]]]:
        if repeats:
            uow.requeue_repeats(now)
        due = uow.claim_notifications(now, lease)
        return due, uow.action_kinds(n.anomaly_id for n in due)

    async def _send(
        self, receiver: str, kind: str, rows: list[Any], now: datetime, lease: datetime, done: dict[int, list[str]]
    ) -> int:
        ids = [r.id for r in rows]
        if receiver not in self.channels:  # the receiver left the config: leave its rows to a process that has it
            await self.store.transact(lambda uow: uow.settle_notifications(ids, lease, state="pending", due_at=lease))
            return 0
        later = self._hold_until(receiver, rows, now)
        if later is not None:
            await self.store.transact(lambda uow: uow.settle_notifications(ids, lease, state="pending", due_at=later))
            return 0
        alerts = [_alert(r, kind, tuple(done.get(r.anomaly_id, ())), self._usual(r)) for r in rows]
        delivery = await self.channels[receiver].notify(alerts)
        if delivery.sent:
            if receiver in self.rate_limits:
                self.rate_limits[receiver].take(now)
            lines = [_sent_line(r, receiver, kind, now) for r in rows]
            # the receiver has it: record that before any job's work, the window in which a crash sends it again
            await self.store.transact(lambda uow: self._sent(uow, ids, lease, now, lines), urgent=True)
            return 1
        attempts = max(r.attempts for r in rows) + 1
        final = not delivery.retryable or attempts >= MAX_ATTEMPTS
        values: dict[str, Any] = {"attempts": attempts, "last_error": delivery.error[:500]}
        values |= {"state": "failed"} if final else {"state": "pending", "due_at": now + backoff(attempts)}
        await self.store.transact(lambda uow: uow.settle_notifications(ids, lease, **values))
        if final:  # a bad key or signature: an operator must fix the config
            log.error("alert.failed", channel=receiver, error=delivery.error, alerts=len(rows), attempts=attempts)
        else:
            log.warning("alert.retry", channel=receiver, error=delivery.error, alerts=len(rows), attempts=attempts)
        return 0

    @staticmethod
    def _sent(uow: UnitOfWork, ids: list[int], lease: datetime, now: datetime, lines: list[dict[str, Any]]) -> None:
        """Mark the group sent in the claim's own conditional update, and log it once."""
        if uow.settle_notifications(ids, lease, state="sent", sent_at=now):
            uow.record(lines)
        else:
            log.warning("alert.lease_lost", alerts=len(ids))

    def _usual(self, row: Any) -> tuple[float, int] | None:
        if row.rule != "slow_for_route" or self.explain is None:
            return None
        return self.explain(row)

    def _hold_until(self, receiver: str, rows: list[Any], now: datetime) -> datetime | None:
        """Return when a group may go out if not now: after quiet hours, or when the channel has budget."""
        quiet = self.quiet_hours
        if quiet and not any(quiet.allows(now, r.severity) for r in rows):
            return quiet.ends_after(now)
        limit = self.rate_limits.get(receiver)
        if limit is not None and limit.next_free(now) > now:
            return limit.next_free(now)
        return None


def repeats(route: Route) -> bool:
    """Tell whether any node of the route tree sends open anomalies again (a ``repeat_interval`` above 0)."""
    return bool(route.repeat_interval) or any(repeats(r) for r in route.routes)


def _alert(row: Any, kind: str, actions: tuple[str, ...], usual: tuple[float, int] | None = None) -> Alert:
    return Alert(
        anomaly_id=row.anomaly_id,
        rule=row.rule,
        severity=row.severity,
        state="resolved" if kind == "resolved" else "firing",
        carrier=row.carrier,
        tracking_no=row.tracking_no,
        order_id=row.order_id,
        shop=row.shop,
        opened_at=row.opened_at,
        compensation_fen=row.compensation_fen,
        detail=row.detail,
        waiting_since=_TIME.process_result_value(row.waiting_since, None),
        actions=("intercept", *actions) if row.rule == "intercept_failed" else actions,
        usual_seconds=usual[0] if usual else None,
        usual_samples=usual[1] if usual else None,
    )


def _sent_line(row: Any, receiver: str, kind: str, now: datetime) -> dict[str, Any]:
    data = parcel_keys(row) | {"channel": receiver, "rule": row.rule}
    if kind == "resolved":
        data["status"] = "resolved"
    return {"at": now, "event": "alert_sent", "parcel_id": row.parcel_id, "data": data}


__all__ = ["LABELS", "Notifier", "repeats"]
