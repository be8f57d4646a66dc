"""Settings: one TOML file plus environment overrides, validated once at start-up.

Errors name the file, the key and the bad value. Secrets are read from the environment
(``PARCEL_MONITOR_DATABASE_URL`` and ``*_env`` keys), never written in the file or logged.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.alerts.channels.catalog import TYPES as CHANNEL_TYPES
from monitor.alerts.channels.catalog import parse_settings
from monitor.alerts.routing import Route, default_route, parse_route
from monitor.alerts.timing import QuietHours
from monitor.errors import ConfigError, RuleConfigError
from monitor.rules.ruleset import RuleSet, build_ruleset

#: The shipped default, config/default.toml, packaged as monitor/default.toml so it travels with the wheel.
BUILT_IN = "<built-in default: config/default.toml>"
DATA_DIR_ENV = "PARCEL_MONITOR_DATA_DIR"
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_RATE_LIMITS = {"dingtalk": 20, "wecom": 20, "feishu": 100}
TOP_LEVEL = (
    "timezone", "database", "rules", "carriers", "alerts", "log", "demo", "api", "polling", "retention", "intercepts",
)  # fmt: skip
DEFAULT_LISTEN = "127.0.0.1:8080"


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


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The HTTP API: where it listens and the two secrets that guard it (never in a repr)."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Bearer token every /api/v1 request must carry; None → the daemon makes one up at start.
    token: str | None = field(default=None, repr=False)
    #: HMAC-SHA256 key of the refund webhook; None → refund requests are refused with 503.
    refund_secret: str | None = field(default=None, repr=False)
    #: Name of the variable the token came from, for messages (never the value).
    token_env: str = "PARCEL_MONITOR_API_TOKEN"
    refund_secret_env: str = "PARCEL_MONITOR_REFUND_SECRET"
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = 5_000_000


@dataclass(frozen=True, slots=True)
class CarrierQuota:
    """How much of a carrier's API the poller may use."""

    requests_per_second: float | None = None
    requests_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class PollingSettings:
    """Adaptive polling cadence: often near a deadline, backing off while nothing changes."""

    #: Cadence when a pickup deadline or promised delivery is near, and for parcels at risk.
    near_minutes: int = 30
    #: How near "near" is.
    near_window_hours: int = 6
    #: Steps of the back-off while nothing changes (3 → 6 → 12 → 24 h by default).
    backoff_hours: tuple[int, ...] = (3, 6, 12, 24)
    #: How often the poll job wakes to look for due parcels.
    tick_seconds: int = 10
    #: Most parcels one poll round claims.
    round_limit: int = 5_000
    quotas: dict[str, CarrierQuota] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long finished parcels stay in the store (their daily KPIs stay for ever)."""

    #: Delivered or returned parcels older than this many days are deleted; 0 keeps them.
    finished_days: int = 180


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """How long database work may wait, and on how many threads the daemon runs it."""

    #: SQLite: seconds a write waits for another writer's lock before the statement fails.
    busy_timeout_seconds: float = 5.0
    #: PostgreSQL: seconds a statement may run, and may wait for a lock (0 = no limit).
    statement_timeout_seconds: float = 30.0
    lock_timeout_seconds: float = 5.0
    #: Threads (each with its own connection) the daemon runs database work on, off the event loop.
    threads: int = 4


@dataclass(frozen=True, slots=True)
class InterceptSettings:
    """How refunds are decided and intercepts watched."""

    #: An intercept in requested or pending longer than this raises one alert.
    stuck_after_minutes: int = 15
    #: A refund for a parcel known less freshly than this asks its carrier first (0: never).
    stale_after_minutes: int = 5
    #: How long that one track call may take before the refund is decided on what is known.
    fresh_track_seconds: float = 2.0


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
    api: ApiSettings = field(default_factory=ApiSettings)
    polling: PollingSettings = field(default_factory=PollingSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    intercepts: InterceptSettings = field(default_factory=InterceptSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)


def data_dir(environ: Mapping[str, str]) -> Path:
    """Return where the default SQLite file lives: ``$PARCEL_MONITOR_DATA_DIR``, else the XDG data home.

    Never the current folder: two commands run from two folders must find the same database.
    """
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV]).expanduser()
    home = environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(home) / "parcel-monitor"


def default_database_url(environ: Mapping[str, str]) -> str:
    """Return the SQLite file in the data directory, the database used when none is configured."""
    return f"sqlite:///{data_dir(environ) / 'parcel-monitor.db'}"


def load(path: str | Path | None, environ: Mapping[str, str]) -> Settings:
    """Read ``path`` (or the shipped default when None) and apply the environment."""
    source = str(path) if path else BUILT_IN
    try:
        if path is None:
            text = resources.files("monitor").joinpath("default.toml").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        raw: dict[str, Any] = tomllib.loads(text)
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
    url = environ.get("PARCEL_MONITOR_DATABASE_URL") or database.get("url") or default_database_url(environ)
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
        api=_api(_table(raw, "api"), environ),
        polling=_polling(_table(raw, "polling")),
        retention=_retention(_table(raw, "retention")),
        intercepts=_intercepts(_table(raw, "intercepts")),
        database=_database(database),
    )


def _unknown(table: Mapping[str, Any], where: str, known: tuple[str, ...]) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown setting (known: {', '.join(known)})")


def _whole(table: Mapping[str, Any], key: str, where: str, default: int, minimum: int = 1) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}.{key}: expected a whole number ≥ {minimum}, got {value!r}")
    return value


def _secret(table: Mapping[str, Any], key: str, environ: Mapping[str, str], default_env: str) -> tuple[str | None, str]:
    """Read ``<key>_env`` (the name of a variable) or fall back to ``default_env``."""
    env = table.get(f"{key}_env", default_env)
    if not isinstance(env, str) or not env:
        raise ConfigError(f"api.{key}_env: expected the name of an environment variable, got {env!r}")
    if key in table:
        raise ConfigError(f"api.{key}: do not write secrets in the file; set {key}_env to a variable's name")
    value = environ.get(env) or None
    return value, env


def _api(table: Mapping[str, Any], environ: Mapping[str, str]) -> ApiSettings:
    _unknown(table, "api", ("listen", "token_env", "refund_secret_env", "max_body_bytes", "token", "refund_secret"))
    listen = environ.get("PARCEL_MONITOR_LISTEN") or table.get("listen", DEFAULT_LISTEN)
    host, sep, port_text = str(listen).rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"api.listen: expected host:port such as {DEFAULT_LISTEN!r}, got {listen!r}")
    token, token_env = _secret(table, "token", environ, "PARCEL_MONITOR_API_TOKEN")
    secret, secret_env = _secret(table, "refund_secret", environ, "PARCEL_MONITOR_REFUND_SECRET")
    return ApiSettings(
        host=host.strip("[]"),
        port=int(port_text),
        token=token,
        refund_secret=secret,
        token_env=token_env,
        refund_secret_env=secret_env,
        max_body_bytes=_whole(table, "max_body_bytes", "api", 5_000_000),
    )


def _polling(table: Mapping[str, Any]) -> PollingSettings:
    known = ("near_minutes", "near_window_hours", "backoff_hours", "tick_seconds", "round_limit", "carriers")
    _unknown(table, "polling", known)
    steps = table.get("backoff_hours", [3, 6, 12, 24])
    if (
        not isinstance(steps, list)
        or not steps
        or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in steps)
        or steps != sorted(steps)
    ):
        raise ConfigError(f"polling.backoff_hours: expected a rising list of whole hours ≥ 1, got {steps!r}")
    quotas = {}
    for code, quota in _table(table, "carriers").items():
        where = f"polling.carriers.{code}"
        if not isinstance(quota, dict):
            raise ConfigError(f"{where}: expected a table, got {quota!r}")
        _unknown(quota, where, ("requests_per_second", "requests_per_day"))
        rps = quota.get("requests_per_second")
        if rps is not None and (isinstance(rps, bool) or not isinstance(rps, int | float) or rps <= 0):
            raise ConfigError(f"{where}.requests_per_second: expected a number > 0, got {rps!r}")
        per_day = _whole(quota, "requests_per_day", where, 0, 1) if "requests_per_day" in quota else None
        quotas[code] = CarrierQuota(float(rps) if rps is not None else None, per_day)
    return PollingSettings(
        near_minutes=_whole(table, "near_minutes", "polling", 30),
        near_window_hours=_whole(table, "near_window_hours", "polling", 6),
        backoff_hours=tuple(steps),
        tick_seconds=_whole(table, "tick_seconds", "polling", 10),
        round_limit=_whole(table, "round_limit", "polling", 5_000),
        quotas=quotas,
    )


def _database(table: Mapping[str, Any]) -> DatabaseSettings:
    known = ("url", "busy_timeout_seconds", "statement_timeout_seconds", "lock_timeout_seconds", "threads")
    _unknown(table, "database", known)
    seconds = {}
    for key in known[1:4]:
        value = table.get(key, getattr(DatabaseSettings(), key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400:
            raise ConfigError(f"database.{key}: expected seconds from 0 to 86400, got {value!r}")
        seconds[key] = float(value)
    return DatabaseSettings(**seconds, threads=_whole(table, "threads", "database", 4))


def _intercepts(table: Mapping[str, Any]) -> InterceptSettings:
    where = "intercepts"
    _unknown(table, where, ("stuck_after_minutes", "stale_after_minutes", "fresh_track_seconds"))
    seconds = table.get("fresh_track_seconds", 2.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 30:
        raise ConfigError(f"{where}.fresh_track_seconds: expected seconds in (0, 30], got {seconds!r}")
    return InterceptSettings(
        stuck_after_minutes=_whole(table, "stuck_after_minutes", where, 15),
        stale_after_minutes=_whole(table, "stale_after_minutes", where, 5, minimum=0),
        fresh_track_seconds=float(seconds),
    )


def _retention(table: Mapping[str, Any]) -> RetentionSettings:
    _unknown(table, "retention", ("finished_days",))
    return RetentionSettings(finished_days=_whole(table, "finished_days", "retention", 180, minimum=0))
