"""The console channel: one line per alert on a terminal, for the demo and small setups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import TextIO
from zoneinfo import ZoneInfo

from monitor.alerts.messages import one_line
from monitor.alerts.model import SENT, Alert, Delivery


class ConsoleChannel:
    """Print alerts to a stream."""

    def __init__(self, stream: TextIO, name: str = "console", language: str = "zh", tz: tzinfo | None = None) -> None:
        self.name = name
        self.stream = stream
        self.language = language
        self.tz = tz or ZoneInfo("Asia/Shanghai")

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        for alert in alerts:
            when = alert.opened_at.astimezone(self.tz).strftime("%m-%d %H:%M")
            print(f"{when} {one_line(alert, self.language)}", file=self.stream, flush=True)
        return SENT


class RecordingChannel:
    """Stand in for a real channel in replay: keep the alerts, send nothing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Alert] = []

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        self.sent.extend(alerts)
        return SENT
