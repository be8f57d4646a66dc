"""Small builders shared by tests."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

CST = timezone(timedelta(hours=8))
CLI = str(Path(sys.executable).with_name("parcel-monitor"))


def cst(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a November 2026 moment in China Standard Time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)
