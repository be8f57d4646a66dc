"""Every channel type a config may name builds into a working channel object."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx

from monitor.alerts.channels.catalog import TYPES, build
from monitor.clock import SimulatedClock
from monitor.config import load

CONFIG = """
[[alerts.channels]]
type = "console"
[[alerts.channels]]
type = "dingtalk"
webhook_env = "DT_URL"
[[alerts.channels]]
type = "wecom"
webhook_env = "WC_URL"
[[alerts.channels]]
type = "feishu"
webhook_env = "FS_URL"
[[alerts.channels]]
type = "slack"
webhook_env = "SL_URL"
[[alerts.channels]]
type = "email"
host = "127.0.0.1"
port = 2525
starttls = false
from_addr = "monitor@example.com"
to_addrs = ["ops@example.com"]
[[alerts.channels]]
type = "webhook"
webhook_env = "WH_URL"
secret_env = "WH_SECRET"
"""
ENV = {
    "DT_URL": "https://oapi.dingtalk.com/robot/send?access_token=t",
    "WC_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    "FS_URL": "https://open.feishu.cn/open-apis/bot/v2/hook/h",
    "SL_URL": "https://hooks.slack.com/services/T/B/X",
    "WH_URL": "https://erp.example.com/hooks/parcels",
    "WH_SECRET": "s",
}


def test_every_type_builds(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load(path, ENV)
    assert [c.type for c in settings.channels] == list(TYPES)

    async def build_all() -> list[str]:
        async with httpx.AsyncClient() as http:
            clock = SimulatedClock(datetime(2026, 11, 11, tzinfo=UTC))
            return [build(c.name, c.type, c.settings, http=http, clock=clock).name for c in settings.channels]

    assert asyncio.run(build_all()) == list(TYPES)
