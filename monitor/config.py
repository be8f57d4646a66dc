"""Settings: one TOML file plus environment overrides, validated once at start-up.

Errors name the file, the key and the bad value. Secrets are read from the environment
(``PARCEL_MONITOR_DATABASE_URL`` and ``*_env`` keys), never written in the file or logged.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.alerts.channels.catalog import TYPES as CHANNEL_TYPES
from monitor.alerts.channels.catalog import parse_settings
from monitor.alerts.routing import Route, default_route, parse_route
from monitor.alerts.timing import QuietHours
from monitor.errors import ConfigError, RuleConfigError
from monitor.rules.ruleset import RuleSet, build_ruleset

DEFAULT_DATABASE_URL = "sqlite:///parcel-monitor.db"
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_RATE_LIMITS = {"dingtalk": 20, "wecom": 20, "feishu": 100}
TOP_LEVEL = ("timezone", "database", "rules", "carriers", "alerts", "log", "demo")


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """One alert channel."""

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The channel's own validated settings object (secrets resolved from the environment).
    settings: Any = field(default=None, repr=False)
    #: Most messages a minute (DingTalk and WeCom robots allow 20), None for no limit.
    rate_limit_per_minute: int | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the service needs, validated."""

    source: str
    database_url: str
    timezone: ZoneInfo
    rules: RuleSet
    carriers: dict[str, dict[str, Any]]
    channels: tuple[ChannelSettings, ...]
    language: str
    link_base: str
    route: Route
    quiet_hours: QuietHours | None
    log_format: str
    log_level: str
    demo: dict[str, Any]


def load(path: str | Path | None, environ: Mapping[str, str]) -> Settings:
    """Read ``path`` (or the built-in defaults when None) and apply the environment."""
    source = str(path) if path else "<built-in defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{source}: not valid TOML: {err}") from None
    try:
        return _build(source, raw, environ)
    except (ConfigError, RuleConfigError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _table(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table, got {value!r}")
    return value


def _choice(table: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...], default: str) -> str:
    value = table.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}.{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _build(source: str, raw: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    for key in raw:
        if key not in TOP_LEVEL:
            raise ConfigError(f"{key}: unknown section (known: {', '.join(TOP_LEVEL)})")
    database = _table(raw, "database")
    url = environ.get("PARCEL_MONITOR_DATABASE_URL") or database.get("url", DEFAULT_DATABASE_URL)
    if not isinstance(url, str) or not url.startswith(("sqlite", "postgresql", "postgres")):
        raise ConfigError(f"database.url: expected a sqlite:/// or postgresql:// URL, got {url!r}")
    tz_name = raw.get("timezone", "Asia/Shanghai")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"timezone: unknown time zone {tz_name!r}") from None
    rules = build_ruleset(_table(raw, "rules"))
    carriers = _table(raw, "carriers")
    for code, table in carriers.items():
        if not isinstance(table, dict):
            raise ConfigError(f"carriers.{code}: expected a table, got {table!r}")
    alerts = _table(raw, "alerts")
    language = _choice(alerts, "language", "alerts", ("zh", "en"), "zh")
    link_base = alerts.get("link_base", "")
    if not isinstance(link_base, str) or (link_base and not link_base.startswith(("http://", "https://"))):
        raise ConfigError(f"alerts.link_base: expected an http(s) URL, got {link_base!r}")
    channel_list = alerts.get("channels", [{"type": "console"}])
    if not isinstance(channel_list, list):
        raise ConfigError(f"alerts.channels: expected a list of tables, got {channel_list!r}")
    channels = []
    for i, ch in enumerate(channel_list):
        where = f"alerts.channels[{i}]"
        if not isinstance(ch, dict):
            raise ConfigError(f"{where}: expected a table, got {ch!r}")
        ctype = _choice(ch, "type", where, CHANNEL_TYPES, "")
        name = ch.get("name", ctype)
        if not isinstance(name, str) or not name or name in {c.name for c in channels}:
            raise ConfigError(f"{where}.name: expected a unique non-empty name, got {name!r}")
        options = {k: v for k, v in ch.items() if k not in ("type", "name", "rate_limit_per_minute")}
        limit = ch.get("rate_limit_per_minute", DEFAULT_RATE_LIMITS.get(ctype))
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"{where}.rate_limit_per_minute: expected a whole number ≥ 1, got {limit!r}")
        try:
            parsed = parse_settings(ctype, options, environ)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        channels.append(ChannelSettings(name, ctype, options, parsed, limit))
    names = [c.name for c in channels]
    unknown_alert_keys = sorted(set(alerts) - {"language", "link_base", "channels", "route", "quiet_hours"})
    if unknown_alert_keys:
        raise ConfigError(f"alerts.{unknown_alert_keys[0]}: unknown setting")
    try:
        route = parse_route(alerts["route"], set(names)) if "route" in alerts else default_route(names)
        quiet = QuietHours.parse(_table(alerts, "quiet_hours"), timezone) if "quiet_hours" in alerts else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    log = _table(raw, "log")
    return Settings(
        source=source,
        database_url=url,
        timezone=timezone,
        rules=rules,
        carriers=carriers,
        channels=tuple(channels),
        language=language,
        link_base=link_base,
        route=route,
        quiet_hours=quiet,
        log_format=_choice(log, "format", "log", LOG_FORMATS, "auto"),
        log_level=_choice(log, "level", "log", LOG_LEVELS, "info"),
        demo=_table(raw, "demo"),
    )
