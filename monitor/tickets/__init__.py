"""Tickets that get worked: opened by rules, assigned by config, closed by people (or by the rules).

- :mod:`monitor.tickets.model`: states, transitions, outcomes (已催件 已补发 已联系买家 已理赔 无需处理).
- :mod:`monitor.tickets.settings`: ``[tickets]`` (keep_for_person, teams, assignment rules).
- :mod:`monitor.tickets.assignment`: first matching rule → a user or a team (round robin, least loaded).
- :mod:`monitor.tickets.book`: :class:`TicketBook`, the service API (open, reopen, auto-close, change, close, comment).
- :mod:`monitor.tickets.store`: the SQL of the ticket tables. See docs/tickets.md.
"""

from monitor.tickets.book import UNSET, TicketBook, TicketChange
from monitor.tickets.model import EventKind, Outcome, TicketState
from monitor.tickets.settings import TicketSettings

__all__ = ["UNSET", "EventKind", "Outcome", "TicketBook", "TicketChange", "TicketSettings", "TicketState"]
