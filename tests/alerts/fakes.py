"""The builders the channel tests share; the fake receivers themselves are in ``monitor.testing.receivers``."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from monitor.alerts.model import Alert, Channel, Delivery

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2026, 11, 11, 2, 30, tzinfo=UTC)  # 10:30 on Singles' Day in Shanghai
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
RULES = ("pickup_overdue", "stalled", "carrier_exception", "lost_suspected")


def fixture(provider: str, name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/<provider>/<name>.json``: ``source``, ``body`` and, for replies, ``status``."""
    return json.loads((FIXTURES / provider / f"{name}.json").read_text(encoding="utf-8"))


def make_alerts(count: int) -> list[Alert]:
    """Return ``count`` firing alerts with distinct tracking numbers that cannot be mistaken for phones."""
    return [
        Alert(
            anomaly_id=i + 1,
            rule=RULES[i % len(RULES)],
            severity="critical" if i % 3 == 0 else "warning",
            state="firing",
            carrier="SF",
            tracking_no=f"SF{100000000000 + i}",
            order_id=f"TB{900000 + i}",
            shop="旗舰店",
            opened_at=NOW - timedelta(hours=30, minutes=i),
            compensation_fen=500 + i,
        )
        for i in range(count)
    ]


def deliver(build: Callable[[httpx.AsyncClient], Channel], alerts: Sequence[Alert]) -> Delivery:
    """Build a channel on a fresh client and run one ``notify``."""

    async def run() -> Delivery:
        async with httpx.AsyncClient(timeout=5) as http:
            return await build(http).notify(alerts)

    return asyncio.run(run())


def closed_port_url(path: str) -> str:
    """Return a URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
