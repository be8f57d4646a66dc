"""Polling: when to ask (cadence), how fast (pacing), whether the carrier answers (health), and the poller."""

from monitor.polling.poller import Poller, RoundStats

__all__ = ["Poller", "RoundStats"]
