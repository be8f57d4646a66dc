"""The channel types a config may name: how each reads its settings and how it is built.

Modules load lazily, so a channel nobody configured costs nothing at start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import import_module
from typing import Any

import httpx

from monitor.alerts.channels.console import ConsoleChannel
from monitor.alerts.model import Channel
from monitor.clock import Clock

#: type → (module, settings class, channel class)
CHANNEL_TYPES: dict[str, tuple[str, str, str]] = {
    "dingtalk": ("monitor.alerts.channels.dingtalk", "DingTalkSettings", "DingTalkChannel"),
    "wecom": ("monitor.alerts.channels.wecom", "WeComSettings", "WeComChannel"),
    "feishu": ("monitor.alerts.channels.feishu", "FeishuSettings", "FeishuChannel"),
    "slack": ("monitor.alerts.channels.slack", "SlackSettings", "SlackChannel"),
    "email": ("monitor.alerts.channels.email", "EmailSettings", "EmailChannel"),
    "webhook": ("monitor.alerts.channels.webhook", "WebhookSettings", "WebhookChannel"),
}
TYPES = ("console", *CHANNEL_TYPES)


def parse_settings(channel_type: str, raw: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """Validate a channel's settings (secrets read from ``environ``); ValueError names the key."""
    if channel_type == "console":
        unknown = sorted(set(raw) - {"stream"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown console setting")
        return None
    module, settings_class, _ = CHANNEL_TYPES[channel_type]
    return getattr(import_module(module), settings_class).from_mapping(dict(raw), environ)


def build(
    name: str,
    channel_type: str,
    settings: Any,
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    language: str = "zh",
    link_base: str = "",
) -> Channel:
    """Build one channel from its validated settings."""
    if channel_type == "console":
        return ConsoleChannel(sys.stdout, name, language)
    module, _, channel_class = CHANNEL_TYPES[channel_type]
    cls = getattr(import_module(module), channel_class)
    if channel_type == "email":
        return cls(name, settings, clock, language, link_base)  # type: ignore[no-any-return]
    return cls(name, settings, http, clock, language, link_base)  # type: ignore[no-any-return]
