"""Each anomaly is alerted exactly once (issue 10 item 6), with real daemons, pushes and a real receiver.

Before: the push and verdict requests flushed alerts themselves and ``Notifier.flush`` sent what
was pending without claiming it, so 40 concurrent pushes gave up to 5 messages per anomaly and two
daemons on one PostgreSQL alerted 30 of 100 anomalies twice. Now requests only queue, the dispatch
job claims each notification (``pending`` → ``sending`` with a lease) before sending it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from carriers.testing.kuaidi100 import Fleet, quiet_in_transit
from monitor.testing.receivers import FakeWebhook
from tests.daemon.process import Daemon, wait_for
from tests.faults.daemons import ENV, WEBHOOK_SECRET, alerted, anomaly_ids, numbers, push_exception, ship, write_config

#: Dispatch runs every 5 s: after the last anomaly was alerted, two more runs would show a double.
SETTLE_SECONDS = 11


def push_all(bases: list[str], nums: list[str]) -> None:
    """Push a problem scan for every number, 8 at a time, spread over the daemons in turn."""

    def one(i_number: tuple[int, str]) -> int:
        i, number = i_number
        with httpx.Client(base_url=bases[i % len(bases)], timeout=30) as client:
            return push_exception(client, number).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, enumerate(nums))) == {200}


def assert_each_alerted_once(receiver: FakeWebhook, database_url: str, expected: int) -> None:
    wait_for(lambda: len(anomaly_ids(database_url)) == expected, timeout=60)
    ids = anomaly_ids(database_url)
    wait_for(lambda: set(alerted(receiver)) >= ids, timeout=60)
    time.sleep(SETTLE_SECONDS)
    counts = alerted(receiver)
    assert set(counts) == ids
    twice = {a: n for a, n in counts.items() if n > 1}
    assert not twice, f"{len(twice)} of {len(ids)} anomalies alerted more than once: {twice}"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_one_daemon_40_concurrent_pushes_alert_each_anomaly_once(tmp_path: Path, database_url: str) -> None:
    picked_up = datetime.now(UTC) - timedelta(hours=1)
    with Fleet(quiet_in_transit(picked_up)) as carrier, FakeWebhook(WEBHOOK_SECRET) as receiver:
        config = write_config(tmp_path, database_url, carrier.url, receiver.url)
        daemon = Daemon(["--config", str(config)], ENV).wait_started()
        try:
            nums = numbers("ZTP", 40)
            with daemon.client() as client:
                ship(client, nums)
            push_all([daemon.base], nums)
            assert_each_alerted_once(receiver, database_url, 40)
        finally:
            assert daemon.terminate() == 0, daemon.output()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_daemons_on_one_postgresql_alert_each_anomaly_once(tmp_path: Path, database_url: str) -> None:
    picked_up = datetime.now(UTC) - timedelta(hours=1)
    with Fleet(quiet_in_transit(picked_up)) as carrier, FakeWebhook(WEBHOOK_SECRET) as receiver:
        config = write_config(tmp_path, database_url, carrier.url, receiver.url)
        first = Daemon(["--config", str(config)], ENV).wait_started()
        second = Daemon(["--config", str(config), "--no-migrate"], ENV).wait_started()
        try:
            nums = numbers("ZTQ", 100)
            with first.client() as client:
                ship(client, nums)
            push_all([first.base, second.base], nums)
            assert_each_alerted_once(receiver, database_url, 100)
        finally:
            assert first.terminate() == 0, first.output()
            assert second.terminate() == 0, second.output()
