"""When a notification may go out: quiet hours and per-channel rate limits, on an injected clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window (it may span midnight) in which only severe alerts break through."""

    start: time
    end: time
    tz: tzinfo
    breakthrough: str = "critical"

    def active(self, moment: datetime) -> bool:
        """Tell whether ``moment`` falls inside the window."""
        local = moment.astimezone(self.tz).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def allows(self, moment: datetime, severity: str) -> bool:
        """Tell whether an alert of ``severity`` may be sent at ``moment``."""
        return not self.active(moment) or SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[self.breakthrough]

    def ends_after(self, moment: datetime) -> datetime:
        """Return when the window that contains ``moment`` closes."""
        local = moment.astimezone(self.tz)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end

    @classmethod
    def parse(cls, raw: dict[str, Any], tz: tzinfo, where: str = "alerts.quiet_hours") -> QuietHours:
        """Read ``{start = "23:00", end = "08:00", breakthrough = "critical"}``."""
        unknown = sorted(set(raw) - {"start", "end", "breakthrough"})
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown setting (use start, end, breakthrough)")
        bounds = []
        for key in ("start", "end"):
            try:
                bounds.append(time.fromisoformat(raw[key]))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{where}.{key}: expected a time such as 23:00, got {raw.get(key)!r}") from None
        level = raw.get("breakthrough", "critical")
        if level not in SEVERITY_RANK:
            raise ValueError(f"{where}.breakthrough: expected one of {', '.join(SEVERITY_RANK)}, got {level!r}")
        return cls(bounds[0], bounds[1], tz, level)


class RateLimit:
    """At most ``limit`` messages in any sliding ``window`` (DingTalk and WeCom robots: 20 a minute)."""

    def __init__(self, limit: int, window: timedelta = timedelta(minutes=1)) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must allow at least 1 message, got {limit}")
        self.limit = limit
        self.window = window
        self._sent: deque[datetime] = deque()

    def _expire(self, now: datetime) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def next_free(self, now: datetime) -> datetime:
        """Return the first moment a message may be sent: ``now`` if there is room."""
        self._expire(now)
        return now if len(self._sent) < self.limit else self._sent[0] + self.window

    def take(self, now: datetime) -> bool:
        """Use one message of the budget at ``now``; False (and nothing used) if there is none."""
        if self.next_free(now) > now:
            return False
        self._sent.append(now)
        return True
