"""Who gets a new ticket: the ``[[tickets.assign]]`` rules, first match wins, Alertmanager-route style.

A rule names a ``user`` or a ``team``; a team hands out round-robin (its turn counter lives in
the store, so a restart or another replica continues the rotation) or to the member with the
fewest active tickets. Disabled accounts, viewers and logins no account has are skipped; no
match, or nobody left to take it, leaves the ticket in the unassigned queue (a team's, if any).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from monitor.tickets.model import ACTIVE_STATES
from monitor.tickets.settings import TeamSettings, TicketSettings
from monitor.tickets.store import TicketRows

log = structlog.get_logger("monitor.tickets")


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a ticket goes: an account (or None: unassigned), a team (or None), and why."""

    assignee_id: int | None
    login: str | None
    team: str | None
    why: str


UNASSIGNED = Assignment(None, None, None, "no assignment rule matched")


def can_work(account: Any) -> bool:
    """Tell whether an account may be handed tickets: enabled, and not a viewer."""
    return account is not None and not account.disabled and account.role != "viewer"


class Assigner:
    """Apply the assignment rules of :class:`TicketSettings`."""

    def __init__(self, settings: TicketSettings) -> None:
        self.settings = settings

    def assign(self, rows: TicketRows, labels: Mapping[str, str], at: datetime) -> Assignment:
        """Return where a ticket with ``labels`` (rule, severity, shop, carrier) goes."""
        for i, rule in enumerate(self.settings.assign):
            if not rule.match.matches(labels):
                continue
            if rule.user is not None:
                account = rows.accounts_by_login([rule.user]).get(rule.user)
                if can_work(account):
                    return Assignment(account.id, account.login, None, f"assign[{i}]: user")
                log.warning("tickets.assignee_unavailable", login=rule.user, rule_index=i)
                return Assignment(None, None, None, f"assign[{i}]: user {rule.user} cannot take tickets")
            team = self.settings.team(rule.team)
            assert team is not None  # the settings checked every rule's team exists
            return self.from_team(rows, team, at, f"assign[{i}]")
        return UNASSIGNED

    def from_team(self, rows: TicketRows, team: TeamSettings, at: datetime, why: str) -> Assignment:
        """Pick a member of ``team`` by its strategy; nobody able → the team's unassigned queue."""
        accounts = rows.accounts_by_login(team.members)
        able = [accounts[m] for m in team.members if can_work(accounts.get(m))]
        if not able:
            return Assignment(None, None, team.name, f"{why}: team {team.name} has nobody able to take it")
        if team.strategy == "least_loaded":
            load = rows.load([a.id for a in able], ACTIVE_STATES)
            chosen = min(able, key=lambda a: load.get(a.id, 0))  # ties: the first in the members list
            return Assignment(chosen.id, chosen.login, team.name, f"{why}: team {team.name}, least loaded")
        # round robin over the members able to take it now, in the configured order
        chosen = able[rows.next_turn(team.name, at) % len(able)]
        return Assignment(chosen.id, chosen.login, team.name, f"{why}: team {team.name}, round robin")
