"""Small builders shared by tests."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.replay.runner import replay
from monitor.replay.scenario import parse
from monitor.rules.ruleset import build_ruleset

CST = timezone(timedelta(hours=8))
CLI = str(Path(sys.executable).with_name("parcel-monitor"))


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a November 2026 moment in China Standard Time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


def run(
    lines: list[dict[str, Any]], rules: dict[str, Any] | None = None, database_url: str | None = None
) -> list[dict[str, Any]]:
    """Replay scenario ``lines`` through the real engine and return the output lines."""
    steps = parse([json.dumps(line, ensure_ascii=False) for line in lines])
    out = io.StringIO()
    asyncio.run(replay(steps, build_ruleset(rules), out, database_url=database_url))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def end(at: str) -> dict[str, Any]:
    """Return an ``end`` scenario line."""
    return {"kind": "end", "at": at}
