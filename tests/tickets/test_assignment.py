"""Assignment rules: first match wins, a user or a team (round robin across restarts, least loaded), or nobody."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from monitor.clock import SimulatedClock
from monitor.errors import ConfigError
from monitor.intake.shipments import Shipment
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.store.store import Store
from monitor.tickets import TicketChange
from monitor.tickets.settings import parse_tickets
from monitor.tickets.store import TicketRows
from tests.tickets.kit import START, MakeMonitor, add_people, overdue, ship, tickets

TEAM = [{"name": "ops", "members": ["a", "b", "c"], "strategy": "round_robin"}]


def assignees(store: Store) -> list[str | None]:
    """Return the login each ticket went to, oldest ticket first."""
    with store.begin() as uow:
        rows = uow.tickets()
        logins = TicketRows(uow).logins_of(r.assignee_id for r in rows)
    return [logins.get(r.assignee_id) if r.assignee_id else None for r in rows]


def test_round_robin_continues_across_a_restart(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "a", "b", "c")
    config = {"teams": TEAM, "assign": [{"match": {"rule": "pickup_overdue"}, "team": "ops"}]}
    first = make_monitor(**config)
    ship(first, "SB1", "SB2")
    overdue(first, clock)
    assert assignees(store) == ["a", "b"]
    again = make_monitor(**config)  # a restart (or another replica): the turn is in the store, not in memory
    later = START + timedelta(hours=1)
    again.add_shipments([Shipment(f"O{n}", "sandbox", n, later, shop="旗舰店") for n in ("SB3", "SB4", "SB5")])
    clock.set(later + timedelta(hours=24, minutes=1))
    asyncio.run(again.tick())
    assert assignees(store) == ["a", "b", "c", "a", "b"]
    assert {t.team for t in tickets(store)} == {"ops"}


def test_a_disabled_member_is_skipped(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "a", "b", "c")
    people.set_disabled("b", True, by=CLI)
    monitor = make_monitor(teams=TEAM, assign=[{"team": "ops"}])
    ship(monitor, "SB1", "SB2", "SB3")
    overdue(monitor, clock)
    assert assignees(store) == ["a", "c", "a"]


def test_least_loaded_picks_the_member_with_fewest_active_tickets(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "a", "b")
    team = [{"name": "wh", "members": ["a", "b"], "strategy": "least_loaded"}]
    monitor = make_monitor(teams=team, assign=[{"match": {"shop": "二店"}, "team": "wh"}])
    ship(monitor, "SB1", "SB2", shop="旗舰店")  # no rule matches: the unassigned queue
    overdue(monitor, clock)
    assert assignees(store) == [None, None]
    with store.begin() as uow:  # give both to a: a has 2 active, b none
        for t in tickets(store):
            monitor.tickets.change(uow, t.id, TicketChange(assignee="a"), "lead")
    later = START + timedelta(hours=1)
    monitor.add_shipments([Shipment(f"O{n}", "sandbox", n, later, shop="二店") for n in ("SB3", "SB4", "SB5")])
    clock.set(later + timedelta(hours=24, minutes=1))
    asyncio.run(monitor.tick())
    # b (0) → b (1) → then a and b are tied at 2: the first in the list
    assert assignees(store) == ["a", "a", "b", "b", "a"]


def test_first_match_wins_and_a_user_rule_gives_it_to_that_user(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "a", "boss")
    rules = [
        {"match": {"rule": ["stalled", "pickup_overdue"], "carrier": "sandbox"}, "user": "boss"},
        {"team": "ops"},
    ]
    monitor = make_monitor(teams=[{"name": "ops", "members": ["a"]}], assign=rules)
    ship(monitor, "SB1")
    overdue(monitor, clock)
    assert assignees(store) == ["boss"] and tickets(store)[0].team is None


def test_a_viewer_or_unknown_user_leaves_it_unassigned(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "v", role="viewer")
    monitor = make_monitor(teams=[{"name": "ops", "members": ["v", "ghost"]}], assign=[{"team": "ops"}])
    ship(monitor, "SB1")
    overdue(monitor, clock)
    assert assignees(store) == [None] and tickets(store)[0].team == "ops"  # the team's unassigned queue
    with capture_logs() as logs:
        assert monitor.tickets.check_accounts(store) == ["ghost"]
    assert [e["login"] for e in logs if e["event"] == "tickets.unknown_login"] == ["ghost"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"teams": [{"name": "ops", "members": ["a"], "stratgy": "x"}]}, "tickets.teams[0].stratgy: unknown setting"),
        ({"assign": [{"match": {"rule": "nope"}, "user": "a"}]}, "tickets.assign[0].match.rule: unknown rule 'nope'"),
        ({"assign": [{"match": {"colour": "red"}, "user": "a"}]}, "tickets.assign[0].match.colour: unknown setting"),
        ({"assign": [{"user": "a", "team": "ops"}]}, "give exactly one of user or team"),
        ({"assign": [{"team": "ops"}]}, "assign[0].team: no team named 'ops'"),
        ({"keep_for_person": ["nope"]}, "tickets.keep_for_person: unknown rule 'nope'"),
    ],
)
def test_the_settings_refuse_unknown_keys_naming_them(database_url: str, raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_tickets(raw)
    assert message in str(err.value)
