"""The ticket's states, the edges between them, and the fixed set of outcomes the KPIs count.

::

    open ◄─► processing ──► done | cancelled ──► reopened ──► processing | done | cancelled
      └──────────────────► done | cancelled

    reopened: the same anomaly (parcel and rule) fired again after its ticket was closed, or a person said so.
"""

from __future__ import annotations

from enum import StrEnum


class TicketState(StrEnum):
    """Where a ticket is in its life."""

    OPEN = "open"
    PROCESSING = "processing"
    DONE = "done"
    CANCELLED = "cancelled"
    REOPENED = "reopened"


class Outcome(StrEnum):
    """How a person closed a ticket as done: a small fixed set the KPIs count per rule."""

    CHASED = "chased"
    RESHIPPED = "reshipped"
    BUYER_CONTACTED = "buyer_contacted"
    CLAIM_FILED = "claim_filed"
    NOTHING_NEEDED = "nothing_needed"


#: The Chinese label of each outcome, as ops staff and the console say it.
OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.CHASED: "已催件",
    Outcome.RESHIPPED: "已补发",
    Outcome.BUYER_CONTACTED: "已联系买家",
    Outcome.CLAIM_FILED: "已理赔",
    Outcome.NOTHING_NEEDED: "无需处理",
}

#: States somebody still has to work (the queue; "least loaded" counts these).
ACTIVE_STATES: tuple[str, ...] = (TicketState.OPEN, TicketState.PROCESSING, TicketState.REOPENED)
CLOSED_STATES: tuple[str, ...] = (TicketState.DONE, TicketState.CANCELLED)

#: Every edge of the state machine; anything else is refused (409) naming from and to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    TicketState.OPEN: (TicketState.PROCESSING, TicketState.DONE, TicketState.CANCELLED),
    TicketState.PROCESSING: (TicketState.OPEN, TicketState.DONE, TicketState.CANCELLED),
    TicketState.REOPENED: (TicketState.PROCESSING, TicketState.DONE, TicketState.CANCELLED),
    TicketState.DONE: (TicketState.REOPENED,),
    TicketState.CANCELLED: (TicketState.REOPENED,),
}

#: Actors that are not people: the rule engine, and the daemon's own jobs.
RULES_ACTOR = "rules"
SYSTEM_ACTOR = "system"
#: Prefix of an ``assigned`` event's from/to values when it is about the team rather than the person.
TEAM_PREFIX = "team:"


class EventKind(StrEnum):
    """What a ``ticket_event`` row records."""

    OPENED = "opened"
    ASSIGNED = "assigned"
    STATE = "state"
    OUTCOME = "outcome"
    COMMENT = "comment"
    REOPENED = "reopened"
    AUTO_CLOSED = "auto_closed"
    OVERDUE = "overdue"
    ESCALATED = "escalated"
    RESHIPPED = "reshipped"
