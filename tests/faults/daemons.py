"""What the fault tests' daemons share: a config on local fakes, shipments, Kuaidi100 pushes, receiver counts.

The carrier is the kit's Kuaidi100 :class:`~carriers.testing.kuaidi100.Fleet` (every number picked
up, then quiet), pushes are signed with the salt as Kuaidi100 signs them, and alerts go to the
kit's :class:`~monitor.testing.receivers.FakeWebhook`, which checks each document's signature.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from carriers.testing.kuaidi100 import CUSTOMER, KEY, body_for, push_body
from monitor.store.db import make_engine
from monitor.store.store import Store
from monitor.testing.receivers import FakeWebhook

SALT = "push-salt-5d1e"
WEBHOOK_SECRET = "webhook-secret-0b7c"
ENV = {"TEST_K100_CUSTOMER": CUSTOMER, "TEST_K100_KEY": KEY, "TEST_K100_SALT": SALT,
       "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def write_config(tmp_path: Path, database_url: str, kuaidi100_url: str, webhook_url: str | None = None,
                 extra: str = "", database: str = "", name: str = "monitor.toml") -> Path:  # fmt: skip
    """Write a daemon config: Kuaidi100 on a fake, alerts to the fake webhook (or the console).

    ``database`` adds keys to ``[database]``, ``extra`` whole tables.
    """
    channel = (
        f'[[alerts.channels]]\ntype = "webhook"\nname = "ops"\nwebhook = "{webhook_url}"\n'
        'secret_env = "TEST_WEBHOOK_SECRET"\n'
        if webhook_url
        else ""
    )
    config = tmp_path / name
    config.write_text(
        f"""
[database]
url = "{database_url}"
{database}

[carriers.kuaidi100]
customer_env = "TEST_K100_CUSTOMER"
key_env = "TEST_K100_KEY"
salt_env = "TEST_K100_SALT"
company = "zhongtong"
base_url = "{kuaidi100_url}"
retries = 0

[polling]
tick_seconds = 1

[log]
format = "json"
level = "debug"

{channel}
{extra}
""",
        encoding="utf-8",
    )
    return config


def ship(client: httpx.Client, numbers: list[str], hours_ago: float = 2) -> None:
    """Post shipments (shipped ``hours_ago``) in batches."""
    shipped = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
    for i in range(0, len(numbers), 500):
        items = [{"order_id": f"TB-{n}", "carrier": "kuaidi100", "tracking_no": n, "shipped_at": shipped}
                 for n in numbers[i : i + 500]]  # fmt: skip
        answer = client.post("/api/v1/shipments", json={"shipments": items})
        assert answer.status_code in (200, 201), answer.text


def push_exception(client: httpx.Client, number: str) -> httpx.Response:
    """Post Kuaidi100's signed push of a 疑难 (problem parcel) scan, which opens a carrier_exception."""
    now = datetime.now(UTC)
    scans = [(now - timedelta(hours=1), "103", "【杭州市】快递员已揽收"), (now - timedelta(minutes=5), "2", "疑难件")]
    body = push_body(body_for(number, scans), SALT)
    return client.post("/api/v1/carriers/kuaidi100/push", content=body, headers=FORM)


def alerted(receiver: FakeWebhook) -> Counter[int]:
    """Count how many verified messages named each anomaly (carrier-health alerts, id 0, left out)."""
    return Counter(a["anomaly_id"] for d in receiver.documents() for a in d["alerts"] if a["anomaly_id"])


def anomaly_ids(database_url: str) -> set[int]:
    """Return the ids of the anomalies in the database (read beside the daemon)."""
    engine = make_engine(database_url)
    try:
        with Store(engine).begin() as uow:
            return {a.id for a in uow.anomalies()}
    finally:
        engine.dispose()


def numbers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(count)]
