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
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field

from monitor.alerts.channels.catalog import TYPES as CHANNEL_TYPES
from monitor.alerts.channels.catalog import parse_settings
from monitor.alerts.routing import DURATION, Route, default_route, parse_route
from monitor.alerts.timing import QuietHours
from monitor.errors import ConfigError, RuleConfigError
from monitor.norms.settings import NormSettings
from monitor.rules.ruleset import RuleSet, RulesTable, build_ruleset
from monitor.tables import Table, check, line_of, number, one_of, validate, whole_at_least
from monitor.tickets.settings import TicketSettings

#: The shipped default, config/default.toml, packaged as monitor/default.toml so it travels with the wheel.
BUILT_IN = "<built-in default: config/default.toml>"
DATA_DIR_ENV = "PARCEL_MONITOR_DATA_DIR"
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_RATE_LIMITS = {"dingtalk": 20, "wecom": 20, "feishu": 100}
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


@dataclass(frozen=True, slots=True)
class KpiSettings:
    """What the KPIs are held against: the 24-hour pickup rate each shop must reach (the 指标 page's target line)."""

    #: The share of parcels due that must be picked up by their deadline, for a shop not named below.
    pickup_rate_target: float = 0.95
    #: Shop name → its own target (``[kpi.shops."<shop>"]``).
    shops: dict[str, float] = field(default_factory=dict)

    def pickup_target(self, shop: str) -> float:
        """Return the 24-hour pickup rate ``shop`` is held to."""
        return self.shops.get(shop, self.pickup_rate_target)


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
    tickets: TicketSettings = field(default_factory=TicketSettings)
    norms: NormSettings = field(default_factory=NormSettings)
    kpi: KpiSettings = field(default_factory=KpiSettings)


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


# The file's shape: one declared model per table. Every model refuses keys it does not declare, so a
# typo (`[database] ulr = …`) is an error naming its line, never a silent fallback to a default.
# Values a plugin or another module validates (carriers.<code>, channel options, route values) are
# declared here by key only (typed Any) and checked where they are used.


def _host_port(value: Any) -> bool:
    host, sep, port = str(value).rpartition(":")
    return bool(sep and host and port.isdigit() and 0 <= int(port) <= 65535)


def _time_zone(value: Any) -> Any:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


Whole = Annotated[int, whole_at_least(1)]
WholeOrZero = Annotated[int, whole_at_least(0)]
DaySeconds = Annotated[float, check(lambda v: number(v) and 0 <= v <= 86_400, "seconds from 0 to 86400")]
EnvName = Annotated[str, check(lambda v: isinstance(v, str) and bool(v), "the name of an environment variable")]
HostPort = Annotated[str, check(_host_port, f"host:port such as {DEFAULT_LISTEN!r}")]
TimeZoneName = Annotated[str, BeforeValidator(_time_zone)]
Duration = Annotated[
    str | None, check(lambda v: isinstance(v, str) and bool(DURATION.match(v)), "a duration such as 30s, 5m, 4h or 1d")
]


class DatabaseTable(Table):
    """``[database]``: the URL (the environment overrides it) and how long database work may wait."""

    url: str | None = None
    busy_timeout_seconds: DaySeconds = 5.0
    statement_timeout_seconds: DaySeconds = 30.0
    lock_timeout_seconds: DaySeconds = 5.0
    threads: Whole = 4


class LogTable(Table):
    """``[log]``."""

    format: Annotated[str, one_of(*LOG_FORMATS)] = "auto"
    level: Annotated[str, one_of(*LOG_LEVELS)] = "info"


class DemoTable(Table):
    """``[demo]`` takes no keys today; the table is accepted, empty."""


class ApiTable(Table):
    """``[api]``: secrets only by the name of their variable (``token = …`` is refused)."""

    listen: HostPort = DEFAULT_LISTEN
    token_env: EnvName = "PARCEL_MONITOR_API_TOKEN"
    refund_secret_env: EnvName = "PARCEL_MONITOR_REFUND_SECRET"
    max_body_bytes: Whole = 5_000_000


class QuotaTable(Table):
    """``[polling.carriers.<code>]``: your contract with one carrier."""

    requests_per_second: Annotated[float | None, check(lambda v: number(v) and v > 0, "a number > 0")] = None
    requests_per_day: Annotated[int | None, whole_at_least(1)] = None


class PollingTable(Table):
    """``[polling]``."""

    near_minutes: Whole = 30
    near_window_hours: Whole = 6
    backoff_hours: Annotated[
        list[int],
        check(
            lambda v: isinstance(v, list) and bool(v) and v == sorted(v)
            and all(not isinstance(h, bool) and isinstance(h, int) and h >= 1 for h in v),
            "a rising list of whole hours ≥ 1",
        ),
    ] = Field(default_factory=lambda: [3, 6, 12, 24])  # fmt: skip
    tick_seconds: Whole = 10
    round_limit: Whole = 5_000
    carriers: dict[str, QuotaTable] = Field(default_factory=dict)


class RetentionTable(Table):
    """``[retention]``."""

    finished_days: WholeOrZero = 180


class InterceptsTable(Table):
    """``[intercepts]``."""

    stuck_after_minutes: Whole = 15
    stale_after_minutes: WholeOrZero = 5
    fresh_track_seconds: Annotated[float, check(lambda v: number(v) and 0 < v <= 30, "seconds in (0, 30]")] = 2.0


Share = Annotated[float, check(lambda v: number(v) and 0 < v <= 1, "a share above 0 and at most 1, such as 0.95")]


class KpiShopTable(Table):
    """``[kpi.shops."<shop>"]``: one shop's own targets."""

    pickup_rate_target: Share


class KpiTable(Table):
    """``[kpi]``: the targets the 指标 page draws (a share, 0.95 = 95 %)."""

    pickup_rate_target: Share = 0.95
    shops: dict[str, KpiShopTable] = Field(default_factory=dict)


class QuietHoursTable(Table):
    """Keys of ``[alerts.quiet_hours]``; :meth:`QuietHours.parse` checks the values."""

    start: Any = None
    end: Any = None
    breakthrough: Any = None


class RouteTable(Table):
    """One route node: durations checked here; :func:`parse_route` checks the rest and the receivers."""

    receiver: Any = None
    match: Any = None
    group_by: Any = None
    group_wait: Duration = None
    group_interval: Duration = None
    repeat_interval: Duration = None
    send_resolved: Any = None
    continue_: Any = Field(None, alias="continue")
    routes: list[RouteTable] = Field(default_factory=list)


class ChannelTable(Table):
    """Keys every channel takes; each type's model adds its own, which its module checks."""

    type: Annotated[str, one_of(*CHANNEL_TYPES)] = Field("", validate_default=True)
    name: Annotated[str | None, check(lambda v: isinstance(v, str) and bool(v), "a unique non-empty name")] = None
    rate_limit_per_minute: Annotated[int | None, whole_at_least(1)] = None


class ConsoleChannelTable(ChannelTable):
    """The console prints to standard output and takes no keys of its own."""


class DingTalkChannelTable(ChannelTable):
    """Keys of a ``dingtalk`` channel (monitor.alerts.channels.dingtalk checks them)."""

    webhook: Any = None
    webhook_env: Any = None
    secret: Any = None
    secret_env: Any = None
    at_mobiles: Any = None


class WeComChannelTable(ChannelTable):
    """Keys of a ``wecom`` channel."""

    webhook: Any = None
    webhook_env: Any = None
    mention_userids: Any = None
    mention_mobiles: Any = None


class FeishuChannelTable(ChannelTable):
    """Keys of a ``feishu`` channel."""

    webhook: Any = None
    webhook_env: Any = None
    secret: Any = None
    secret_env: Any = None
    msg_type: Any = None


class SlackChannelTable(ChannelTable):
    """Keys of a ``slack`` channel."""

    webhook: Any = None
    webhook_env: Any = None


class EmailChannelTable(ChannelTable):
    """Keys of an ``email`` channel."""

    host: Any = None
    port: Any = None
    username: Any = None
    password: Any = None
    password_env: Any = None
    starttls: Any = None
    from_addr: Any = None
    to_addrs: Any = None
    ca_file: Any = None


class WebhookChannelTable(ChannelTable):
    """Keys of a ``webhook`` channel."""

    webhook: Any = None
    webhook_env: Any = None
    secret: Any = None
    secret_env: Any = None


CHANNEL_TABLES: dict[str, type[ChannelTable]] = {
    "console": ConsoleChannelTable,
    "dingtalk": DingTalkChannelTable,
    "wecom": WeComChannelTable,
    "feishu": FeishuChannelTable,
    "slack": SlackChannelTable,
    "email": EmailChannelTable,
    "webhook": WebhookChannelTable,
}


class AlertsTable(Table):
    """``[alerts]``."""

    language: Annotated[str, one_of("zh", "en")] = "zh"
    link_base: Annotated[
        str, check(lambda v: isinstance(v, str) and (not v or v.startswith(("http://", "https://"))), "an http(s) URL")
    ] = ""
    #: Checked one by one against the model of each entry's type (see CHANNEL_TABLES).
    channels: list[dict[str, Any]] = Field(default_factory=lambda: [{"type": "console"}])
    route: RouteTable | None = None
    quiet_hours: QuietHoursTable | None = None


class ConfigFile(Table):
    """The whole file."""

    noun = "section"

    timezone: TimeZoneName = "Asia/Shanghai"
    database: DatabaseTable = DatabaseTable()
    rules: RulesTable = RulesTable()
    #: One table per carrier plugin, checked by the plugin's own settings type (``from_mapping``).
    carriers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    alerts: AlertsTable = AlertsTable()
    log: LogTable = LogTable()
    demo: DemoTable = DemoTable()
    api: ApiTable = ApiTable()
    polling: PollingTable = PollingTable()
    retention: RetentionTable = RetentionTable()
    intercepts: InterceptsTable = InterceptsTable()
    tickets: TicketSettings = TicketSettings()  # monitor.tickets.settings
    norms: NormSettings = NormSettings()  # monitor.norms.settings
    kpi: KpiTable = KpiTable()


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
        line = line_of(text, str(err))
        raise ConfigError(f"{source}:{line}: {err}" if line else f"{source}: {err}") from None


def _build(source: str, raw: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    file: ConfigFile = validate(ConfigFile, raw)
    url = environ.get("PARCEL_MONITOR_DATABASE_URL") or file.database.url or default_database_url(environ)
    if not url.startswith(("sqlite", "postgresql", "postgres")):
        raise ConfigError(f"database.url: expected a sqlite:/// or postgresql:// URL, got {url!r}")
    timezone = ZoneInfo(file.timezone)
    rules = build_ruleset(raw.get("rules", {}))  # the preset merged with the file's tables, checked above
    alerts, raw_alerts = file.alerts, raw.get("alerts", {})
    channels: list[ChannelSettings] = []
    for i, ch in enumerate(alerts.channels):
        where = f"alerts.channels[{i}]"
        ctype = ch.get("type", "")
        if ctype not in CHANNEL_TABLES:
            raise ConfigError(f"{where}.type: expected one of {', '.join(CHANNEL_TYPES)}, got {ctype!r}")
        table = validate(CHANNEL_TABLES[ctype], ch, ("alerts", "channels", i))
        name = table.name or ctype
        if name in {c.name for c in channels}:
            raise ConfigError(f"{where}.name: expected a unique non-empty name, got {name!r}")
        options = {k: v for k, v in ch.items() if k not in ChannelTable.model_fields}
        limit = table.rate_limit_per_minute if "rate_limit_per_minute" in ch else DEFAULT_RATE_LIMITS.get(ctype)
        try:
            parsed = parse_settings(ctype, options, environ)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        channels.append(ChannelSettings(name, ctype, options, parsed, limit))
    names = [c.name for c in channels]
    try:
        route = parse_route(raw_alerts["route"], set(names)) if alerts.route else default_route(names)
        quiet = QuietHours.parse(raw_alerts["quiet_hours"], timezone) if alerts.quiet_hours else None
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return Settings(
        source=source,
        database_url=url,
        timezone=timezone,
        rules=rules,
        carriers=file.carriers,
        channels=tuple(channels),
        language=alerts.language,
        link_base=alerts.link_base,
        route=route,
        quiet_hours=quiet,
        log_format=file.log.format,
        log_level=file.log.level,
        demo=file.demo.model_dump(),
        api=_api(file.api, environ),
        polling=_polling(file.polling),
        retention=RetentionSettings(finished_days=file.retention.finished_days),
        intercepts=InterceptSettings(**file.intercepts.model_dump()),
        database=DatabaseSettings(**file.database.model_dump(exclude={"url"})),
        tickets=file.tickets,
        norms=file.norms,
        kpi=KpiSettings(file.kpi.pickup_rate_target, {s: t.pickup_rate_target for s, t in file.kpi.shops.items()}),
    )


def _api(table: ApiTable, environ: Mapping[str, str]) -> ApiSettings:
    listen = environ.get("PARCEL_MONITOR_LISTEN") or table.listen
    if not _host_port(listen):
        raise ConfigError(f"api.listen: expected host:port such as {DEFAULT_LISTEN!r}, got {listen!r}")
    host, _, port = listen.rpartition(":")
    return ApiSettings(
        host=host.strip("[]"),
        port=int(port),
        token=environ.get(table.token_env) or None,
        refund_secret=environ.get(table.refund_secret_env) or None,
        token_env=table.token_env,
        refund_secret_env=table.refund_secret_env,
        max_body_bytes=table.max_body_bytes,
    )


def _polling(table: PollingTable) -> PollingSettings:
    quotas = {code: CarrierQuota(q.requests_per_second, q.requests_per_day) for code, q in table.carriers.items()}
    return PollingSettings(
        near_minutes=table.near_minutes,
        near_window_hours=table.near_window_hours,
        backoff_hours=tuple(table.backoff_hours),
        tick_seconds=table.tick_seconds,
        round_limit=table.round_limit,
        quotas=quotas,
    )
