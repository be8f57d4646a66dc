"""What an alert says and what a channel answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Alert:
    """One anomaly, as ops staff should hear about it (no buyer contact details)."""

    anomaly_id: int
    rule: str
    severity: str
    state: str  # firing | resolved
    carrier: str
    tracking_no: str
    order_id: str
    shop: str
    opened_at: datetime
    compensation_fen: int | None = None
    detail: str = ""
    #: The last sign of life: the last carrier scan, or the shipping time when there was none.
    waiting_since: datetime | None = None
    #: What the monitor did about it: ``ticket``, ``reshipment_suggestion``, ``intercept``.
    actions: tuple[str, ...] = ()
    #: Mobiles to @-mention in this message (an overdue ticket's assignee), besides the channel's own.
    mentions: tuple[str, ...] = ()
    #: slow_for_route: the route's usual silence (the learned quantile, seconds) and the samples behind it.
    usual_seconds: float | None = None
    usual_samples: int | None = None


def mentions_of(alerts: Sequence[Alert], configured: Sequence[str] = ()) -> list[str]:
    """Return the channel's configured mobiles then the alerts' own, each once, in order."""
    return list(dict.fromkeys([*configured, *(m for a in alerts for m in a.mentions if m)]))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A channel's answer: sent, or failed and whether trying again may help."""

    sent: bool
    retryable: bool = False
    error: str = ""


SENT = Delivery(sent=True)


class Channel(Protocol):
    """One place alerts go; it builds and sends one payload and knows nothing of routing."""

    name: str

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Send ``alerts`` as one message.

        Returns:
            ``SENT``, or a failed :class:`Delivery` saying whether a retry may succeed.
        """
        ...
