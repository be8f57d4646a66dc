"""The actor on activity rows: stamped while a principal acts, never over an actor already named."""

from __future__ import annotations

from monitor.people.audit import ACTOR, acting_as, activity, stamp
from monitor.people.model import SERVICE, Principal, Role
from tests.people.conftest import START

LI = Principal(3, "li.lei", Role.OPERATOR, "Xq3v9TfA")


def test_rows_are_stamped_only_while_someone_acts() -> None:
    row = {"at": START, "event": "anomaly_resolved", "parcel_id": 1, "data": {"rule": "stalled"}}
    assert stamp([row]) == [row]  # the daemon's own work: nobody did it
    with acting_as(LI):
        (stamped,) = stamp([row])
    assert stamped["data"] == {"rule": "stalled", "actor": {"login": "li.lei", "account_id": 3, "token_id": "Xq3v9TfA"}}
    assert row["data"] == {"rule": "stalled"}  # the caller's row is left as it was
    assert ACTOR.get() is None


def test_an_actor_already_named_is_kept() -> None:
    named = activity("account_added", START, SERVICE, account="lucy")
    assert named == {"at": START, "event": "account_added", "parcel_id": None,
                     "data": {"account": "lucy", "actor": {"login": "service", "account_id": None}}}  # fmt: skip
    with acting_as(LI):
        assert stamp([named]) == [named]
