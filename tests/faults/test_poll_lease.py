"""A poll round's lease is sized to the round (issue 10 item 8, first half).

The claim moves ``next_poll_at`` forward for the length of the round; a daemon killed mid-round
leaves its parcels to be polled again when that lease ends. It was 10 minutes whatever the round,
which hid the parcels of a killed round (and sent refunds of parcels in transit the "held" way).
Now it is the round's paced length twice over plus a minute, at most 3 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carriers.testing.kuaidi100 import Fleet, quiet_in_transit
from monitor.polling.poller import MAX_LEASE, round_lease
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.daemon.process import Daemon, wait_for
from tests.faults.daemons import ENV, numbers, ship, write_config


def test_the_lease_follows_the_round_and_is_a_few_minutes_at_most() -> None:
    assert round_lease(8, 10.0) == timedelta(seconds=61.6)  # the default round: 10 req/s × 10 s × 0.85
    assert round_lease(85, 10.0) == timedelta(seconds=77)
    assert round_lease(100_000, 1.0) == MAX_LEASE == timedelta(minutes=3)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_kill_9_mid_round_hides_its_parcels_for_about_a_minute_not_ten(tmp_path: Path, database_url: str) -> None:
    nums = numbers("ZTK", 5)
    with Fleet(quiet_in_transit(datetime.now(UTC) - timedelta(hours=1)), delay=60) as carrier:  # answers hang
        config = write_config(tmp_path, database_url, carrier.url)
        daemon = Daemon(["--config", str(config)], ENV).wait_started()
        try:
            with daemon.client() as client:
                ship(client, nums)
            wait_for(lambda: len(carrier.received) >= len(nums), timeout=30)  # the round is waiting on them
        finally:
            daemon.kill()  # SIGKILL: nothing is given back
        killed_at = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        store = Store(engine)
        with store.begin() as uow:
            ids = [p.id for p in uow.parcels_by_keys([("kuaidi100", n) for n in nums]).values()]
            leases = [uow.parcel(pid).next_poll_at for pid in ids]
        assert len(leases) == len(nums)
        # the round is tick 1 s × 10 req/s × 0.85 = 8 requests: leased 2 × 0.8 s + 60 s from the claim
        assert all(killed_at < at <= killed_at + timedelta(seconds=65) for at in leases), leases
        after = max(leases) + timedelta(seconds=1)
        with store.begin() as uow:  # when the lease ends, any poller gets them again
            again = uow.claim_for_poll("kuaidi100", after, 100, after + timedelta(minutes=1), risk_until=after)
        assert sorted(r.tracking_no for r in again) == nums
    finally:
        engine.dispose()
