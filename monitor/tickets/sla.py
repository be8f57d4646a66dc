"""Ticket deadlines (SLA): every rule has a time to handle; an overdue ticket is told once, then escalated once.

``due_at`` is the moment the ticket was opened (or reopened) plus its rule's time
(``[tickets.sla]``); it only matters while the ticket is worked (open, processing, reopened),
so closing it stops the clock. Past ``due_at`` the assignee hears about it once through the
route tree (labels ``rule = "ticket_overdue"``, severity, shop, carrier; their mobile
@-mentioned); one more period later (past ``due_at``, or past that alert if quiet hours held
it) the team's lead does (``rule =
"ticket_escalated"``). As with the intercept watchdog, each ticket is claimed (a conditional
update of ``overdue_alerted_at`` / ``escalated_at``) before its alert goes out, so two replicas
never both send it, and a failed send is given back to the next run. Quiet hours hold what
they hold for alerts: such a ticket is not claimed until they end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.alerts.model import Alert, Channel
from monitor.alerts.routing import Route, parse_duration, resolve
from monitor.alerts.timing import QuietHours
from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.tickets")

OVERDUE = "ticket_overdue"
ESCALATED = "ticket_escalated"
#: The time to handle each rule's ticket (``refund``: the warehouse hold of a refund-only request).
DEFAULT_TIMES = {
    "intercept_failed": "30m",
    "pickup_overdue": "2h",
    "stalled": "8h",
    "carrier_exception": "4h",
    "lost_suspected": "4h",
    "returned": "8h",
    "delivery_overdue": "8h",
    "pickup_at_risk": "1h",
    "refund": "30m",
}


def _defaults() -> dict[str, timedelta]:
    return {rule: parse_duration(value, f"tickets.sla.{rule}") for rule, value in DEFAULT_TIMES.items()}


@dataclass(frozen=True, slots=True)
class SlaSettings:
    """The time to handle per rule; a rule without one has no deadline."""

    times: Mapping[str, timedelta] = field(default_factory=_defaults)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str = "tickets.sla") -> SlaSettings:
        """Read ``{stalled = "8h", refund = "30m", …}`` over the defaults; ``"0m"`` (or ``""``) turns a rule's off."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a table of rule = duration, got {raw!r}")
        times = _defaults()
        for rule, value in raw.items():
            if value in ("", "0m", "0s", "0h"):
                times.pop(rule, None)
                continue
            times[rule] = parse_duration(value, f"{where}.{rule}" if where else rule)
        return cls(times)

    def period(self, rule: str) -> timedelta | None:
        """Return the time to handle ``rule``'s tickets, or None."""
        return self.times.get(rule)

    def due(self, rule: str, severity: str, start: datetime) -> datetime | None:
        """Return the deadline of a ticket of ``rule`` (re)opened at ``start``: ``TicketBook(deadline=…)``."""
        period = self.period(rule)
        return start + period if period else None

    def deadline(self, rule: str, start: datetime) -> dict[str, Any]:
        """Return the columns a ticket opened (or reopened) at ``start`` gets: its ``due_at``, marks cleared."""
        period = self.period(rule)
        return {"due_at": start + period if period else None, "overdue_alerted_at": None, "escalated_at": None}


class SlaWatch:
    """Tell assignees of their overdue tickets once, and team leads once more a period later."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: SlaSettings,
        channels: Mapping[str, Channel],
        route: Route,
        quiet_hours: QuietHours | None = None,
        leads: Mapping[str, str] | None = None,
        batch: int = 500,
    ) -> None:
        """``leads`` maps a team to its lead's login (from the assignment config)."""
        self.store = store
        self.clock = clock
        self.settings = settings
        self.channels = dict(channels)
        self.route = route
        self.quiet_hours = quiet_hours
        self.leads = dict(leads or {})
        self.batch = batch

    async def run(self) -> int:
        """Send the overdue and escalation alerts that are due; return how many tickets were told about."""
        now = self.clock.now()
        told = await self._pass(now, OVERDUE)
        return told + await self._pass(now, ESCALATED)

    async def _pass(self, now: datetime, rule: str) -> int:
        column = "overdue_alerted_at" if rule == OVERDUE else "escalated_at"
        claimed = await self.store.transact(lambda uow: self._claim(uow, now, rule, column))
        if not claimed:
            return 0
        by_receiver: dict[str, list[tuple[int, Alert]]] = {}
        for row, mention in claimed:
            alert = self._alert(row, rule, mention, now)
            labels = {"rule": rule, "severity": row.severity, "carrier": row.carrier, "shop": row.shop}
            for route in resolve(self.route, labels):
                if route.receiver in self.channels:
                    by_receiver.setdefault(route.receiver, []).append((row.id, alert))
            log.warning("ticket." + ("overdue" if rule == OVERDUE else "escalated"), ticket_id=row.id,
                        rule=row.rule, team=row.team, assignee=row.assignee_login)  # fmt: skip
        unsent: set[int] = set()
        for receiver, items in sorted(by_receiver.items()):
            delivery = await self.channels[receiver].notify([alert for _, alert in items])
            if not delivery.sent:
                log.warning("ticket.sla_alert_failed", channel=receiver, error=delivery.error, rule=rule)
                unsent.update(i for i, _ in items)
        await self.store.transact(lambda uow: self._settle(uow, claimed, unsent, rule, column, now))
        return len(claimed) - len(unsent)

    def _claim(self, uow: UnitOfWork, now: datetime, rule: str, column: str) -> list[tuple[Any, str]]:
        """Pick the due tickets the quiet hours let through and mark them; return each with whom to @-mention."""
        if rule == OVERDUE:
            rows = uow.overdue_tickets(now, self.batch)
        else:
            shortest = min(self.settings.times.values(), default=None)
            if shortest is None:
                return []
            rows = uow.escalations_due(now - shortest, self.batch)
            rows = [r for r in rows if (at := self._escalate_at(r)) is not None and at <= now]
        quiet = self.quiet_hours
        rows = [r for r in rows if quiet is None or quiet.allows(now, r.severity)]
        mine = set(uow.mark_tickets([r.id for r in rows], column, now))
        claimed: list[tuple[Any, str]] = []
        for row in rows:
            if row.id not in mine:
                continue
            mention = row.assignee_mobile or ""
            if rule == ESCALATED:
                lead = uow.account_by_login(self.leads[row.team]) if row.team in self.leads else None
                mention = lead.mobile if lead is not None else ""
            claimed.append((row, mention))
        return claimed

    def _escalate_at(self, row: Any) -> datetime | None:
        """A period past the deadline, or past the assignee's alert when quiet hours held it."""
        period = self.settings.period(row.rule)
        return max(row.due_at, row.overdue_alerted_at) + period if period else None

    def _alert(self, row: Any, rule: str, mention: str, now: datetime) -> Alert:
        late = int((now - row.due_at).total_seconds() // 60)
        who = row.assignee_name or "unassigned"
        detail = f"ticket #{row.id} ({row.rule}) {late} min past its deadline · {who}"
        if rule == ESCALATED:
            detail += f" · team {row.team or '-'}"
        # anomaly_id 0, like the watchdog's: a receiver deduping on (anomaly_id, state) must not drop it
        return Alert(anomaly_id=0, rule=rule, severity=row.severity, state="firing",
                     carrier=row.carrier, tracking_no=row.tracking_no, order_id=row.order_id, shop=row.shop,
                     opened_at=row.created_at, compensation_fen=row.stake_fen, detail=detail[:200],
                     waiting_since=row.due_at, actions=("ticket",), mentions=(mention,) if mention else ())  # fmt: skip

    @staticmethod
    def _settle(
        uow: UnitOfWork, claimed: list[tuple[Any, str]], unsent: set[int], rule: str, column: str, now: datetime
    ) -> None:
        """Give back what was not sent; record the rest in each ticket's history."""
        uow.unmark_tickets(sorted(unsent), column)
        kind = "overdue" if rule == OVERDUE else "escalated"
        lines = []
        for row, _ in claimed:
            if row.id in unsent:
                continue
            uow.add_ticket_event({"ticket_id": row.id, "at": now, "actor": "system", "kind": kind, "from_value": None,
                                  "to_value": row.team if rule == ESCALATED else None, "body": ""})  # fmt: skip
            data = parcel_keys(row) | {"ticket_id": row.id, "rule": row.rule, "assignee": row.assignee_login,
                                       "team": row.team}  # fmt: skip
            lines.append({"at": now, "event": rule, "parcel_id": row.parcel_id, "data": data})
        uow.record(lines)

    def next_due(self, uow: UnitOfWork, now: datetime) -> datetime | None:
        """Return when this watch has something to send next (replay ticks to it); quiet hours push it to their end."""
        moments = [r.due_at for r in uow.overdue_tickets(datetime.max.replace(tzinfo=now.tzinfo), 1)]
        for row in uow.escalations_due(datetime.max.replace(tzinfo=now.tzinfo), self.batch):
            at = self._escalate_at(row)
            if at is not None:
                moments.append(at)
        if not moments:
            return None
        first = min(moments)
        if first <= now and self.quiet_hours is not None and self.quiet_hours.active(now):
            return self.quiet_hours.ends_after(now)
        return first
