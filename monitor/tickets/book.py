"""The ticket book: open (or reopen) a ticket for an anomaly, close it when the anomaly clears, let people work it.

Every method runs inside a unit of work the caller owns, so a ticket change commits with what
caused it (the anomaly resolution, the outbox action, the API request) and with its history:
each change is one ``ticket_event`` row (who, when, from → to). Listeners registered with
:meth:`TicketBook.listen` see those rows in the same transaction (the external ticket sinks
queue their outbox rows from there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store, UnitOfWork
from monitor.tickets.assignment import Assigner, Assignment, can_work
from monitor.tickets.errors import IllegalTransition, InvalidChange, OutcomeRequired, TicketError, UnknownTicket
from monitor.tickets.model import (
    ACTIVE_STATES,
    CLOSED_STATES,
    RULES_ACTOR,
    TEAM_PREFIX,
    TRANSITIONS,
    EventKind,
    Outcome,
    TicketState,
)
from monitor.tickets.settings import TicketSettings, unknown_logins
from monitor.tickets.store import TicketRows

log = structlog.get_logger("monitor.tickets")

TITLES = {
    "pickup_at_risk": "揽收即将超时",
    "pickup_overdue": "24小时未揽收",
    "stalled": "物流轨迹停滞",
    "carrier_exception": "快递异常件",
    "returned": "快递被退回",
    "delivery_overdue": "超过承诺送达时间",
    "lost_suspected": "疑似丢件",
    "intercept_failed": "拦截失败",
    "slow_for_route": "慢于本线路常态",
    "pickup_rate_forecast": "揽收率预计不达标",
    "refund": "仅退款: 暂停发货",
}
#: Resolutions the monitor makes by itself (the scan arrived, a worse rule took over, the shipment was held):
#: these close the anomaly's ticket unless its rule keeps it for a person. A person's resolution does not.
AUTO_RESOLUTIONS = frozenset({"auto", "escalated", "held"})


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Leave as it is" for :class:`TicketChange` fields where None means "take it away".
UNSET: Any = _Unset()

#: ``(rule, severity, opened_at) -> due_at or None``: the SLA deadline of a new ticket (``monitor.tickets.sla``).
Deadline = Callable[[str, str, datetime], datetime | None]
#: Called with each batch of new history rows (dicts with ``id``), inside the transaction that wrote them.
Listener = Callable[[UnitOfWork, list[dict[str, Any]]], None]


@dataclass(frozen=True, slots=True)
class TicketChange:
    """What a person asks to change; a field left UNSET (or None for state/outcome/note) is left as it is."""

    assignee: str | None = UNSET  # a login; None unassigns
    team: str | None = UNSET  # a configured team; None takes it out of any team
    state: str | None = None
    outcome: str | None = None
    note: str | None = None


@dataclass
class _Plan:
    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class TicketBook:
    """Open, reopen, auto-close and change tickets, recording every change."""

    def __init__(self, settings: TicketSettings | None, clock: Clock, *, deadline: Deadline | None = None) -> None:
        self.settings = settings or TicketSettings()
        self.clock = clock
        self.assigner = Assigner(self.settings)
        self.deadline = deadline
        self.listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every batch of new history rows, in their transaction."""
        self.listeners.append(listener)

    def check_accounts(self, store: Store) -> list[str]:
        """Warn (once, at start-up) about every login ``[tickets]`` names that no account has; return them."""
        with store.begin() as uow:
            missing = unknown_logins(self.settings, TicketRows(uow).all_logins())
        for login in missing:
            log.warning("tickets.unknown_login", login=login, hint="parcel-monitor user add " + login)
        return missing

    def keeps(self, rule: str) -> bool:
        """Tell whether a ticket of ``rule`` stays for a person when its anomaly resolves by itself."""
        return rule in self.settings.keep_for_person

    # -- history --------------------------------------------------------------------------

    def record(
        self,
        uow: UnitOfWork,
        ticket_id: int,
        kind: str,
        actor: str,
        from_value: str | None = None,
        to_value: str | None = None,
        body: str = "",
    ) -> int:
        """Append one history row (e.g. ``overdue``, ``escalated``) and return its id."""
        at = self.clock.now()
        return self._write(uow, [_event(ticket_id, at, actor, kind, from_value, to_value, body)])[0]

    def _write(self, uow: UnitOfWork, events: list[dict[str, Any]]) -> list[int]:
        ids = TicketRows(uow).add_events(events)
        written = [e | {"id": i} for e, i in zip(events, ids, strict=True)]
        for listener in self.listeners:
            listener(uow, written)
        return ids

    def comment(self, uow: UnitOfWork, ticket_id: int, body: str, actor: str) -> int:
        """Add a free comment to a ticket; return its history id."""
        if TicketRows(uow).get(ticket_id) is None:
            raise UnknownTicket(ticket_id)
        return self.record(uow, ticket_id, EventKind.COMMENT, actor, body=body)

    # -- opening, from the outbox ---------------------------------------------------------

    def open_for_action(self, uow: UnitOfWork, action: Any) -> tuple[int, bool]:
        """Open the ticket of an outbox ``ticket`` action; return (ticket id, opened or reopened now).

        The same anomaly (parcel and rule) firing again reopens its closed ticket rather than
        opening a second; a retried action finds its ticket and changes nothing.
        """
        now = self.clock.now()
        rows = TicketRows(uow)
        parcel = uow.parcel(action.parcel_id)
        anomaly = uow.anomaly(action.anomaly_id) if action.anomaly_id else None
        if anomaly is not None:
            previous = rows.latest_from_rule(parcel.id, action.rule)
            if previous is not None:
                if previous.anomaly_id == anomaly.id:
                    return previous.id, False
                return self._fired_again(uow, rows, previous, parcel, anomaly, now)
        stake = _stake(parcel, anomaly)
        title = f"{TITLES.get(action.rule, action.rule)} · {parcel.carrier} {parcel.tracking_no}"
        severity = anomaly.severity if anomaly is not None else ""
        ticket_id, created = rows.insert(
            {
                "idempotency_key": action.idempotency_key,
                "parcel_id": parcel.id,
                "anomaly_id": action.anomaly_id,
                "refund_id": action.refund_id,
                "rule": action.rule,
                "title": title,
                "state": TicketState.OPEN.value,
                "shop": parcel.shop,
                "carrier": parcel.carrier,
                "stake_fen": stake,
                "due_at": self.deadline(action.rule, severity, now) if self.deadline else None,
                "created_at": now,
                "updated_at": now,
            }
        )
        if not created:
            return ticket_id, False
        events = [_event(ticket_id, now, RULES_ACTOR, EventKind.OPENED, None, TicketState.OPEN, title)]
        labels = {"rule": action.rule, "severity": severity, "shop": parcel.shop, "carrier": parcel.carrier}
        assignment = self.assigner.assign(rows, labels, now)
        events += self._assign(rows, ticket_id, None, None, assignment, now)
        self._write(uow, events)
        uow.record(
            [
                {
                    "at": now,
                    "event": "ticket_opened",
                    "parcel_id": parcel.id,
                    "data": parcel_keys(parcel) | {"ticket_id": ticket_id, "rule": action.rule},
                }
            ]
        )
        log.info(
            "ticket.opened", ticket_id=ticket_id, rule=action.rule, assignee=assignment.login, team=assignment.team
        )
        if anomaly is not None and anomaly.state == "resolved" and anomaly.resolution in AUTO_RESOLUTIONS:
            # the anomaly cleared before the outbox got to its ticket
            self._auto_close(uow, rows.many([ticket_id], lock=True).values(), anomaly.resolution or "auto")
        return ticket_id, True

    def _assign(
        self,
        rows: TicketRows,
        ticket_id: int,
        old_login: str | None,
        old_team: str | None,
        to: Assignment,
        at: datetime,
    ) -> list[dict[str, Any]]:
        """Apply a rule's assignment to a ticket; return its history rows."""
        events = []
        if to.team != old_team:
            events.append(
                _event(ticket_id, at, RULES_ACTOR, EventKind.ASSIGNED, _team(old_team), _team(to.team), to.why)
            )
        if to.login != old_login:
            events.append(_event(ticket_id, at, RULES_ACTOR, EventKind.ASSIGNED, old_login, to.login, to.why))
        if events:
            rows.update(ticket_id, assignee_id=to.assignee_id, team=to.team, updated_at=at)
        return events

    def _fired_again(
        self, uow: UnitOfWork, rows: TicketRows, ticket: Any, parcel: Any, anomaly: Any, now: datetime
    ) -> tuple[int, bool]:
        """Reopen a closed ticket for its anomaly firing again, or attach the firing to the ticket still open."""
        stake = _stake(parcel, anomaly)
        if ticket.state not in CLOSED_STATES:
            rows.update(ticket.id, anomaly_id=anomaly.id, stake_fen=stake, updated_at=now)
            body = f"the rule fired again (anomaly {anomaly.id})"
            self._write(uow, [_event(ticket.id, now, RULES_ACTOR, EventKind.COMMENT, None, None, body)])
            return ticket.id, False
        count = ticket.reopened_count + 1
        rows.update(
            ticket.id,
            anomaly_id=anomaly.id,
            state=TicketState.REOPENED.value,
            stake_fen=stake,
            outcome=None,
            closed_at=None,
            close_reason=None,
            reopened_count=count,
            overdue_alerted_at=None,
            escalated_at=None,
            due_at=self.deadline(ticket.rule, anomaly.severity, now) if self.deadline else None,
            updated_at=now,
        )
        body = f"the anomaly fired again (anomaly {anomaly.id}), reopened {count}×"
        events = [_event(ticket.id, now, RULES_ACTOR, EventKind.REOPENED, ticket.state, TicketState.REOPENED, body)]
        logins = rows.logins_of([ticket.assignee_id])
        login = logins.get(ticket.assignee_id) if ticket.assignee_id else None
        holder = rows.accounts_by_login([login]).get(login) if login else None
        if not can_work(holder):  # the person who had it cannot take it now: the rules decide again
            labels = {"rule": ticket.rule, "severity": anomaly.severity, "shop": ticket.shop, "carrier": ticket.carrier}
            events += self._assign(rows, ticket.id, login, ticket.team, self.assigner.assign(rows, labels, now), now)
        self._write(uow, events)
        uow.record(
            [
                {
                    "at": now,
                    "event": "ticket_opened",
                    "parcel_id": parcel.id,
                    "data": parcel_keys(parcel) | {"ticket_id": ticket.id, "rule": ticket.rule, "reopened": count},
                }
            ]
        )
        log.info("ticket.reopened", ticket_id=ticket.id, rule=ticket.rule, reopened=count)
        return ticket.id, True

    # -- closing by itself, from the rule engine ------------------------------------------

    def on_anomalies_resolved(self, uow: UnitOfWork, anomalies: Sequence[Any], resolution: str) -> None:
        """Close the active tickets of anomalies that resolved by themselves (unless their rule keeps them)."""
        if resolution not in AUTO_RESOLUTIONS or not anomalies:
            return
        tickets = TicketRows(uow).of_anomalies([a.id for a in anomalies], ACTIVE_STATES)
        self._auto_close(uow, tickets, resolution)

    def _auto_close(self, uow: UnitOfWork, tickets: Any, resolution: str) -> None:
        now = self.clock.now()
        rows = TicketRows(uow)
        reason = f"auto: anomaly resolved ({resolution})"
        events = []
        for t in tickets:
            if self.keeps(t.rule) or t.state not in ACTIVE_STATES:
                continue
            rows.update(t.id, state=TicketState.DONE.value, closed_at=now, close_reason=reason, updated_at=now)
            events.append(_event(t.id, now, RULES_ACTOR, EventKind.AUTO_CLOSED, t.state, TicketState.DONE, reason))
            log.info("ticket.auto_closed", ticket_id=t.id, rule=t.rule, resolution=resolution)
        self._write(uow, events)

    # -- people's changes -----------------------------------------------------------------

    def change(self, uow: UnitOfWork, ticket_id: int, change: TicketChange, actor: str) -> None:
        """Apply a person's change to one ticket, or refuse it (:mod:`monitor.tickets.errors`) changing nothing."""
        rows = TicketRows(uow)
        ticket = rows.get(ticket_id, lock=True)
        if ticket is None:
            raise UnknownTicket(ticket_id)
        plan = self._plan(rows, ticket, change, actor, self.clock.now())
        self._apply(uow, rows, [(ticket.id, plan)])

    def change_many(self, uow: UnitOfWork, ids: Sequence[int], change: TicketChange, actor: str) -> int:
        """Apply one change to many tickets, all or nothing: the first refusal names its index (``ids[3]``).

        Returns how many tickets changed (a ticket already as asked counts as unchanged).
        """
        rows = TicketRows(uow)
        tickets = rows.many(ids, lock=True)
        now = self.clock.now()
        plans = []
        for i, ticket_id in enumerate(ids):
            ticket = tickets.get(ticket_id)
            try:
                if ticket is None:
                    raise UnknownTicket(ticket_id)
                plans.append((ticket_id, self._plan(rows, ticket, change, actor, now)))
            except TicketError as err:
                err.message = f"ids[{i}]: {err.message}"
                err.args = (err.message,)
                err.field = f"ids[{i}]" if isinstance(err, UnknownTicket) else f"ids[{i}].{err.field}"
                raise
        self._apply(uow, rows, plans)
        return sum(1 for _, plan in plans if plan.values)

    def close(
        self,
        uow: UnitOfWork,
        ticket_id: int,
        outcome: Outcome | str,
        actor: str,
        note: str = "",
        replacement: str | None = None,
    ) -> None:
        """Close a ticket as done with ``outcome``; ``replacement`` ("sf SF1234…") records a ``reshipped`` event."""
        self.change(
            uow, ticket_id, TicketChange(state=TicketState.DONE, outcome=str(outcome), note=note or None), actor
        )
        if replacement is not None:
            self.record(uow, ticket_id, EventKind.RESHIPPED, actor, None, replacement)

    def _apply(self, uow: UnitOfWork, rows: TicketRows, plans: list[tuple[int, _Plan]]) -> None:
        events = []
        for ticket_id, plan in plans:
            if plan.values:
                rows.update(ticket_id, **plan.values)
            events += plan.events
        self._write(uow, events)

    def _plan(self, rows: TicketRows, ticket: Any, change: TicketChange, actor: str, now: datetime) -> _Plan:
        """Check a change against one ticket and return the column values and history rows it makes."""
        plan = _Plan()
        if change.assignee is not UNSET:
            self._plan_assignee(rows, ticket, change.assignee, actor, now, plan)
        if change.team is not UNSET and change.team != ticket.team:
            if change.team is not None and self.settings.team(change.team) is None:
                names = [t.name for t in self.settings.teams]
                raise InvalidChange(
                    f"no team {change.team!r} (teams: {', '.join(names) or 'none configured'})",
                    field="team",
                    value=change.team,
                )
            plan.values["team"] = change.team
            plan.events.append(
                _event(ticket.id, now, actor, EventKind.ASSIGNED, _team(ticket.team), _team(change.team), "")
            )
        target = change.state
        if target is None and change.outcome is not None and ticket.state in ACTIVE_STATES:
            target = TicketState.DONE  # an outcome on an open ticket closes it
        note = change.note
        if target is not None and target != ticket.state:
            self._plan_state(ticket, str(target), change.outcome, note or "", actor, now, plan)
            if note is not None:
                plan.values["note"] = note
                note = None  # said in the state event
        elif change.outcome is not None:
            if ticket.state != TicketState.DONE:
                raise IllegalTransition(ticket.id, ticket.state, TicketState.DONE, TRANSITIONS[ticket.state])
            outcome = _outcome(change.outcome)
            if outcome != ticket.outcome:
                plan.values["outcome"] = outcome
                plan.events.append(
                    _event(ticket.id, now, actor, EventKind.OUTCOME, ticket.outcome, outcome, note or "")
                )
                if note is not None:
                    plan.values["note"] = note
                    note = None
        if note is not None and note != ticket.note:
            plan.values["note"] = note
            plan.events.append(_event(ticket.id, now, actor, EventKind.COMMENT, None, None, note))
        if plan.values:
            plan.values["updated_at"] = now
        return plan

    def _plan_assignee(
        self, rows: TicketRows, ticket: Any, login: str | None, actor: str, now: datetime, plan: _Plan
    ) -> None:
        account_id = None
        if login is not None:
            login = login.strip().lower()
            account = rows.accounts_by_login([login]).get(login)
            if account is None:
                raise InvalidChange(f"no account {login!r}", field="assignee", value=login)
            if not can_work(account):
                why = "is disabled" if account.disabled else "is a viewer (reads, works no tickets)"
                raise InvalidChange(f"account {login!r} {why}", field="assignee", value=login)
            account_id = account.id
        if account_id == ticket.assignee_id:
            return
        old = rows.logins_of([ticket.assignee_id]).get(ticket.assignee_id) if ticket.assignee_id else None
        plan.values["assignee_id"] = account_id
        plan.events.append(_event(ticket.id, now, actor, EventKind.ASSIGNED, old, login, ""))

    def _plan_state(
        self, ticket: Any, target: str, outcome: str | None, note: str, actor: str, now: datetime, plan: _Plan
    ) -> None:
        allowed = TRANSITIONS[ticket.state]
        if target not in allowed:
            raise IllegalTransition(ticket.id, ticket.state, target, allowed)
        plan.values["state"] = target
        plan.events.append(_event(ticket.id, now, actor, EventKind.STATE, ticket.state, target, note))
        if target == TicketState.DONE:
            if outcome is None:
                raise OutcomeRequired(ticket.id)
            chosen = _outcome(outcome)
            plan.values |= {"outcome": chosen, "closed_at": now, "close_reason": f"by {actor}"[:64]}
            plan.events.append(_event(ticket.id, now, actor, EventKind.OUTCOME, ticket.outcome, chosen, ""))
        elif target == TicketState.CANCELLED:
            if outcome is not None:
                raise InvalidChange(
                    "a cancelled ticket has no outcome (send state done)", field="outcome", value=outcome
                )
            plan.values |= {"outcome": None, "closed_at": now, "close_reason": f"cancelled by {actor}"[:64]}
        elif target == TicketState.REOPENED:
            plan.values |= {
                "outcome": None,
                "closed_at": None,
                "close_reason": None,
                "reopened_count": ticket.reopened_count + 1,
            }
        elif outcome is not None:
            raise InvalidChange(f"an outcome goes with state done, not {target}", field="outcome", value=outcome)


def _outcome(value: str) -> str:
    try:
        return Outcome(value).value
    except ValueError:
        raise InvalidChange(
            f"unknown outcome {value!r} (known: {', '.join(o.value for o in Outcome)})", field="outcome", value=value
        ) from None


def _stake(parcel: Any, anomaly: Any) -> int | None:
    """Return the money at stake: the anomaly's compensation, else the order amount."""
    if anomaly is not None and anomaly.compensation_fen is not None:
        return int(anomaly.compensation_fen)
    return parcel.amount_fen


def _team(name: str | None) -> str | None:
    return None if name is None else f"{TEAM_PREFIX}{name}"


def _event(
    ticket_id: int, at: datetime, actor: str, kind: str, from_value: Any, to_value: Any, body: str
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "at": at,
        "actor": actor[:64],
        "kind": str(kind),
        "from_value": None if from_value is None else str(from_value)[:128],
        "to_value": None if to_value is None else str(to_value)[:128],
        "body": body[:2000],
    }
