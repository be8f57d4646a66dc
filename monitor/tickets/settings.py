"""``[tickets]``: which rules keep their ticket for a person, the teams, and the assignment rules.

::

    [tickets]
    keep_for_person = ["lost_suspected", "intercept_failed", "returned"]
    teams = [{name = "ops", members = ["li.lei", "han.meimei"], lead = "wang.wu", strategy = "round_robin"}]

    [[tickets.assign]]               # first match wins; no match → the unassigned queue
    match = {rule = "intercept_failed"}
    user = "wang.wu"

    [[tickets.assign]]
    match = {carrier = ["sf", "zto"], severity = "critical"}
    team = "ops"

Validated once at start-up (unknown keys refused, naming the key). Logins are only known to the
store, so :func:`unknown_logins` checks them against the accounts then: a warning, not a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.errors import ConfigError
from monitor.rules.ruleset import RULE_IDS
from monitor.tickets.sinks import SinkConfig
from monitor.tickets.sla import SlaSettings

#: Rules a ticket can come from: the rule ids, and ``refund`` (a shipment held for a refund-only request).
TICKET_RULES = (*RULE_IDS, "refund")
#: What an assignment rule can match on: the labels of the alert route tree.
MATCH_LABELS = ("rule", "severity", "shop", "carrier")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STRICT = ConfigDict(extra="forbid", frozen=True)


def _login(value: str) -> str:
    return value.strip().lower()


class TeamSettings(BaseModel):
    """A team: its members in hand-out order, its lead (escalations), how it hands tickets out."""

    model_config = STRICT

    name: str = Field(min_length=1, max_length=64)
    members: tuple[str, ...] = ()
    lead: str | None = None
    strategy: Literal["round_robin", "least_loaded"] = "round_robin"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use 1–64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        return value

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        logins = tuple(_login(v) for v in value)
        if len(set(logins)) != len(logins):
            raise ValueError("a member is listed twice")
        return logins

    @field_validator("lead")
    @classmethod
    def _lead(cls, value: str | None) -> str | None:
        return None if value is None else _login(value)


class AssignMatch(BaseModel):
    """Labels a ticket must have for a rule to take it; a list means any of them, nothing means any ticket."""

    model_config = STRICT

    rule: str | tuple[str, ...] | None = None
    severity: str | tuple[str, ...] | None = None
    shop: str | tuple[str, ...] | None = None
    carrier: str | tuple[str, ...] | None = None

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for rule in (value,) if isinstance(value, str) else value or ():
            if rule not in TICKET_RULES:
                raise ValueError(f"unknown rule {rule!r} (known: {', '.join(TICKET_RULES)})")
        return value

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether every label this match names has one of its values."""
        for name in MATCH_LABELS:
            wanted = getattr(self, name)
            if wanted is None:
                continue
            if labels.get(name, "") not in ((wanted,) if isinstance(wanted, str) else wanted):
                return False
        return True


class AssignRule(BaseModel):
    """``match`` → a ``user`` or a ``team`` (exactly one)."""

    model_config = STRICT

    match: AssignMatch = AssignMatch()
    user: str | None = None
    team: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else _login(value)

    @model_validator(mode="after")
    def _one_target(self) -> AssignRule:
        if (self.user is None) == (self.team is None):
            raise ValueError("give exactly one of user or team")
        return self


class TicketSettings(BaseModel):
    """The ``[tickets]`` section, validated."""

    model_config = STRICT

    #: Rules whose ticket stays open for a person when the anomaly resolves by itself.
    keep_for_person: tuple[str, ...] = ("lost_suspected", "intercept_failed", "returned")
    teams: tuple[TeamSettings, ...] = ()
    assign: tuple[AssignRule, ...] = ()
    #: ``[tickets.sla]``: time to handle per rule over the defaults (``monitor.tickets.sla``).
    sla: dict[str, str] = {}
    #: ``[[tickets.sinks]]``: external ticket systems told of every ticket event (``monitor.tickets.sinks``).
    sinks: tuple[SinkConfig, ...] = ()

    @field_validator("sla")
    @classmethod
    def _sla(cls, value: dict[str, str]) -> dict[str, str]:
        SlaSettings.parse(value, where="")
        return value

    def sla_settings(self) -> SlaSettings:
        """Return the deadlines per rule."""
        return SlaSettings.parse(self.sla)

    def leads(self) -> dict[str, str]:
        """Return each team's lead (who hears of an escalation), by team name."""
        return {t.name: t.lead for t in self.teams if t.lead}

    @field_validator("keep_for_person")
    @classmethod
    def _keep(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for rule in value:
            if rule not in TICKET_RULES:
                raise ValueError(f"unknown rule {rule!r} (known: {', '.join(TICKET_RULES)})")
        return value

    @model_validator(mode="after")
    def _teams_exist(self) -> TicketSettings:
        names = [t.name for t in self.teams]
        if len(set(names)) != len(names):
            raise ValueError("teams: two teams have the same name")
        for i, rule in enumerate(self.assign):
            if rule.team is not None and rule.team not in names:
                raise ValueError(f"assign[{i}].team: no team named {rule.team!r} (teams: {', '.join(names) or 'none'})")
        return self

    def team(self, name: str | None) -> TeamSettings | None:
        """Return the team called ``name``."""
        return next((t for t in self.teams if t.name == name), None)

    def logins(self) -> set[str]:
        """Return every login the section names (members, leads, users of rules)."""
        found = {m for t in self.teams for m in t.members} | {t.lead for t in self.teams if t.lead}
        return found | {r.user for r in self.assign if r.user}


def parse_tickets(raw: Mapping[str, Any]) -> TicketSettings:
    """Validate ``[tickets]``, refusing it with a :class:`ConfigError` that names the key."""
    try:
        return TicketSettings.model_validate(dict(raw))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(["tickets", *(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"])])
        where = where.replace(".[", "[")
        reason = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {reason}") from None


def unknown_logins(settings: TicketSettings, known: set[str]) -> list[str]:
    """Return the logins the section names that no account has, sorted (start-up warns about each)."""
    return sorted(settings.logins() - known)
