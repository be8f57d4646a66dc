"""SF Express (顺丰速运) through the 丰桥 open platform, registered like any plugin."""

from __future__ import annotations

from typing import Any

from carriers.adapter import INTERCEPT, TRACK, AdapterInfo
from carriers.retry import backoff_context
from carriers.sf.client import CODE, SFCarrier
from carriers.sf.settings import SFSettings


def _build(settings: dict[str, Any], context: dict[str, Any]) -> SFCarrier:
    """Build the adapter from the ``[carriers.sf]`` table and the service's clock, HTTP client and environment.

    ``context`` may also hand in ``wall``, the real clock SF's request timestamps are signed with
    (else ``clock``), and ``sleep`` and ``rand`` for the retry backoff (tests make them instant).
    """
    parsed = SFSettings.from_mapping(settings, context.get("environ", {}))
    return SFCarrier(parsed, context["http"], context.get("wall", context["clock"]), **backoff_context(context))


INFO = AdapterInfo(
    code=CODE,
    label="顺丰速运 SF Express",
    factory=_build,
    capabilities=frozenset({TRACK, INTERCEPT}),
    settings_type=SFSettings,
)

__all__ = ["CODE", "INFO", "SFCarrier", "SFSettings"]
