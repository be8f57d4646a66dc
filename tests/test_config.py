"""Settings: the shipped files load, and every mistake names file, key and value."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from carriers import registry
from carriers.kuaidi100 import settings as kuaidi100_settings
from carriers.sandbox.settings import SandboxSettings
from carriers.sf import settings as sf_settings
from carriers.zto import settings as zto_settings
from monitor import config
from monitor.config import ConfigError, load
from tests.helpers import CLI

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


#: Every variable the production example names (its channels, carriers and ticket sinks).
PROD_ENV = {
    "OPS_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=t",
    "OPS_DINGTALK_SECRET": "SEC",
    "ERP_WEBHOOK_URL": "https://erp.example.com/hook",
    "ERP_WEBHOOK_SECRET": "s",
    "WECOM_WEBHOOK_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    "FEISHU_WEBHOOK_URL": "https://open.feishu.cn/open-apis/bot/v2/hook/h",
    "FEISHU_SECRET": "f",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
    "SMTP_PASSWORD": "pw",
    "SF_CHECK_WORD": "cw",
    "ZTO_APP_KEY": "zk",
    "ZTO_APP_SECRET": "zs",
    "KUAIDI100_CUSTOMER": "kc",
    "KUAIDI100_KEY": "kk",
    "KUAIDI100_SALT": "salt",
    "KUAIDI100_PUSH_TOKEN": "t" * 16,
    "ERP_TICKETS_URL": "https://erp.example.com/tickets",
    "ERP_TICKETS_SECRET": "ts",
}
PROD = ROOT / "config/production.example.toml"


def test_shipped_files_load() -> None:
    default = load(ROOT / "config/default.toml", {"PARCEL_MONITOR_DATA_DIR": "/srv/pm"})
    assert default.database_url == "sqlite:////srv/pm/parcel-monitor.db"
    assert [c.type for c in default.channels] == ["console"]
    prod = load(PROD, PROD_ENV)
    assert [c.name for c in prod.channels] == ["ops", "erp", "warehouse", "cs", "overseas", "mail", "stdout"]
    assert [c.type for c in prod.channels] == ["dingtalk", "webhook", "wecom", "feishu", "slack", "email", "console"]
    assert prod.channels[0].rate_limit_per_minute == 20
    assert prod.route.receiver == "ops" and prod.route.routes[0].receiver == "erp"
    assert prod.route.routes[1].routes[0].receiver == "mail"
    assert prod.quiet_hours is not None and prod.quiet_hours.breakthrough == "critical"
    assert prod.rules.thresholds("sf", "").pickup_hours == 12
    assert prod.rules.thresholds("sandbox", "").pickup_hours == 24
    assert prod.rules.thresholds("sandbox", "海外旗舰店").transit_hours["cross_province"] == 96
    assert prod.rules.spec("delivery_overdue").severity == "info"
    assert prod.rules.base == dataclasses.replace(load(None, {}).rules.base, pickup_risk_hours=6)  # the rest: preset
    assert prod.database.threads == 4 and prod.api.port == 8080 and prod.polling.quotas["kuaidi100"].requests_per_day
    assert prod.tickets.sinks[0].name == "erp"
    adapters = registry.load().adapters
    assert sorted(prod.carriers) == ["kuaidi100", "sf", "zto"]
    for code, table in prod.carriers.items():  # each plugin accepts its table, secrets from PROD_ENV
        assert adapters[code].settings_type.from_mapping(table, PROD_ENV) is not None
    for name in PROD_ENV:  # the test names no variable the example does not use
        assert f'"{name}"' in PROD.read_text(encoding="utf-8")


def _uncommented(text: str) -> str:
    """Return the example with its "# key = value" lines (and "# [table]" headers) switched on."""
    return re.sub(r"^# ?(?=\[[\w.]+\]\s*$|[\w-]+ = )", "", text, flags=re.M)


def _seen(model: type[BaseModel], data: Any, found: dict[type[BaseModel], set[str]]) -> None:
    """Record the keys the file gives each model, walking the data beside the model."""
    if not isinstance(data, dict):
        return
    for cls in model.__mro__:  # keys of a subclass's table count for its bases (OverrideTable → ThresholdsTable)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            found.setdefault(cls, set()).update(data)
    for name, info in model.model_fields.items():
        if (info.alias or name) in data:
            _seen_value(info.annotation, data[info.alias or name], found)


def _seen_value(annotation: Any, value: Any, found: dict[type[BaseModel], set[str]]) -> None:
    for arg in (annotation, *typing.get_args(annotation)):  # X, X | None, list[X], tuple[X, ...], dict[str, X]
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            _seen(arg, value, found)
            return
        if typing.get_origin(arg) in (list, tuple, dict) and isinstance(value, list | dict):
            inner = typing.get_args(arg)[0 if typing.get_origin(arg) is not dict else -1]
            for item in value.values() if isinstance(value, dict) else value:
                _seen_value(inner, item, found)
            return


def _models(model: type[BaseModel], into: set[type[BaseModel]]) -> set[type[BaseModel]]:
    """Return every model reachable from ``model``'s fields."""
    into.add(model)
    stack = [info.annotation for info in model.model_fields.values()]
    while stack:
        annotation = stack.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in into:
                _models(annotation, into)
        else:
            stack.extend(typing.get_args(annotation))
    return into


def test_every_setting_has_a_line_in_the_production_example() -> None:
    """A new setting without an example line fails here: the example shows every key every model accepts."""
    data = tomllib.loads(_uncommented(PROD.read_text(encoding="utf-8")))
    found: dict[type[BaseModel], set[str]] = {}
    _seen(config.ConfigFile, data, found)
    for channel in data["alerts"]["channels"]:
        _seen(config.CHANNEL_TABLES[channel["type"]], channel, found)
    models = _models(config.ConfigFile, set()) | set(config.CHANNEL_TABLES.values()) | {config.ChannelTable}
    missing = []
    for model in sorted(models, key=lambda m: m.__name__):
        keys = {info.alias or name for name, info in model.model_fields.items() if name in model.__annotations__}
        keys -= {k for k in keys if f"{k}_env" in keys}  # a secret written inline: the example never does
        keys -= {"demo"} if model is config.ConfigFile else set()  # [demo] takes no keys
        missing += [f"{model.__name__}.{k}" for k in sorted(keys - found.get(model, set()))]
    plugins = {
        "sf": sf_settings.KNOWN_KEYS,
        "zto": zto_settings.KNOWN_KEYS,
        "kuaidi100": kuaidi100_settings.KNOWN,
        "sandbox": {f.name for f in dataclasses.fields(SandboxSettings)},
    }
    for code, keys in plugins.items():
        missing += [f"carriers.{code}.{k}" for k in sorted(set(keys) - set(data["carriers"].get(code, {})))]
    missing += [f"carriers.sf.return_address.{k}" for k in sf_settings.ADDRESS_KEYS
                if k not in data["carriers"]["sf"]["return_address"]]  # fmt: skip
    assert {c["type"] for c in data["alerts"]["channels"]} == set(config.CHANNEL_TABLES)
    assert not missing, f"settings without a line in config/production.example.toml: {missing}"


def test_every_table_key_is_in_the_configuration_doc() -> None:
    doc = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    tables = ("database", "api", "polling", "intercepts", "retention", "log")
    missing = [
        f"{table}.{key}"
        for table in tables
        for key in config.ConfigFile.model_fields[table].annotation.model_fields  # type: ignore[union-attr]
        if f"`{table}.{key}" not in doc
    ]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_built_in_defaults_equal_the_default_file() -> None:
    builtin = load(None, {})
    shipped = load(ROOT / "config/default.toml", {})
    assert builtin.source == "<built-in default: config/default.toml>"
    assert builtin.carriers == shipped.carriers == {"sandbox": {"seed": 0}}
    assert builtin.database_url == shipped.database_url
    assert builtin.rules.base == shipped.rules.base
    assert builtin.channels == shipped.channels


def test_default_database_lives_in_the_data_directory_not_the_current_folder() -> None:
    assert load(None, {"PARCEL_MONITOR_DATA_DIR": "/data"}).database_url == "sqlite:////data/parcel-monitor.db"
    assert load(None, {"XDG_DATA_HOME": "/home/u/.data"}).database_url == (
        "sqlite:////home/u/.data/parcel-monitor/parcel-monitor.db"
    )
    home = Path("~/.local/share/parcel-monitor/parcel-monitor.db").expanduser()
    assert load(None, {}).database_url == f"sqlite:///{home}"


def test_environment_overrides_database_url(tmp_path: Path) -> None:
    settings = load(
        write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n'), {"PARCEL_MONITOR_DATABASE_URL": "sqlite:///b.db"}
    )
    assert settings.database_url == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[rules]\npreset = "tmal"\n', "rules.preset: unknown preset 'tmal'"),
        (
            "[rules.thresholds]\npickup_hours = -1\n",
            "rules.thresholds.pickup_hours: expected a number of hours ≥ 0, got -1",
        ),
        ("[rules.thresholds.transit_hours]\nfar = 3\n", "rules.thresholds.transit_hours.far: unknown region class"),
        ('[[rules.overrides]]\ncarrier = "sf"\npickup_hours = "x"\n', "rules.overrides[0].pickup_hours"),
        ("[[rules.overrides]]\npickup_hours = 3\n", "rules.overrides[0]: name a carrier, a shop or both"),
        (
            '[rules.rule.stalled]\nseverity = "loud"\n',
            "rules.rule.stalled.severity: expected one of info, warning, critical, got 'loud'",
        ),
        ('[rules.rule.stalled]\nactions = ["page"]\n', "rules.rule.stalled.actions"),
        ("[rules.rule.stale]\nenabled = false\n", "rules.rule.stale: unknown rule id"),
        (
            '[database]\nurl = "mysql://x"\n',
            "database.url: expected a sqlite:/// or postgresql:// URL, got 'mysql://x'",
        ),
        ('timezone = "Mars/Base"\n', "timezone: unknown time zone 'Mars/Base'"),
        (
            '[alerts]\nchannels = [{ type = "pager" }]\n',
            "alerts.channels[0].type: expected one of console, dingtalk, wecom, feishu, slack, email, webhook, "
            "got 'pager'",
        ),
        ("[nonsense]\n", "nonsense: unknown section"),
        ("not toml =\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path, {})
    assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", str(err.value))  # the line, where the key has one
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load(tmp_path / "nope.toml", {})


def test_check_config_command(tmp_path: Path) -> None:
    prod = str(PROD)
    ok = subprocess.run(
        [CLI, "check-config", "--config", prod], capture_output=True, text=True, env=os.environ | PROD_ENV
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "preset tmall" in ok.stdout
    bad = write(tmp_path, "[carriers.sandbox]\nnever_picked_up = 2\n")
    res = subprocess.run([CLI, "check-config", "--config", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "carriers.sandbox: never_picked_up must be a share between 0 and 1, got 2" in res.stderr
    unknown = write(tmp_path, "[carriers.acme]\nkey = 1\n")
    res = subprocess.run([CLI, "check-config", "--config", str(unknown)], capture_output=True, text=True)
    assert res.returncode == 2 and "carriers.acme: no such carrier plugin" in res.stderr


def test_alert_channels_read_their_secrets_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[alerts.channels]]\ntype = "dingtalk"\nname = "ops"\nwebhook_env = "OPS_DINGTALK_URL"\n'
        'secret_env = "OPS_DINGTALK_SECRET"\nat_mobiles = ["13800000000"]\n',
    )
    env = {"OPS_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=abc", "OPS_DINGTALK_SECRET": "SECxyz"}
    settings = load(path, env)
    (channel,) = settings.channels
    assert (channel.name, channel.type) == ("ops", "dingtalk")
    assert channel.settings.secret == "SECxyz"
    assert "SECxyz" not in repr(settings.channels) and "access_token" not in repr(settings.channels)
    with pytest.raises(
        ConfigError, match=r"alerts\.channels\[0\]: secret_env: environment variable OPS_DINGTALK_SECRET"
    ):
        load(path, {"OPS_DINGTALK_URL": env["OPS_DINGTALK_URL"]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[alerts.route]\nreceiver = "pager"\n', "alerts.route.receiver: no alert channel named 'pager'"),
        ('[alerts.route]\nreceiver = "console"\ngroup_wait = "soon"\n', "alerts.route.group_wait: expected a duration"),
        ('[alerts.quiet_hours]\nstart = "23:00"\n', "alerts.quiet_hours.end: expected a time"),
        ('[alerts]\nchannels = [{ type = "console", rate_limit_per_minute = 0 }]\n', "rate_limit_per_minute"),
        ("[alerts]\nroutes = []\n", "alerts.routes: unknown key (did you mean 'route'?)"),
    ],
)
def test_alert_pipeline_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text), {})
    assert message in str(err.value)


TYPOS = [
    ('timezon = "UTC"\n', 1, "timezon: unknown section (did you mean 'timezone'?)"),
    ('[database]\nulr = "postgresql://db/parcels"\n', 2, "database.ulr: unknown key (did you mean 'url'?)"),
    ("[database]\nthreds = 8\n", 2, "database.threds: unknown key (did you mean 'threads'?)"),
    ('[rules]\npreset = "tmall"\npresets = "douyin"\n', 3, "rules.presets: unknown key (did you mean 'preset'?)"),
    (
        "[rules.thresholds]\npickup_hour = 12\n",
        2,
        "rules.thresholds.pickup_hour: unknown threshold (did you mean 'pickup_hours'?)",
    ),
    (
        '[[rules.overrides]]\ncarrier = "sf"\n\n[[rules.overrides]]\nshop = "a"\npickup_hour = 3\n',
        6,
        "rules.overrides[1].pickup_hour: unknown threshold (did you mean 'pickup_hours'?)",
    ),
    (
        '[rules.rule.stalled]\nseverty = "info"\n',
        2,
        "rules.rule.stalled.severty: unknown rule setting (did you mean 'severity'?)",
    ),
    ("[rules.rule.staled]\nenabled = false\n", 1, "rules.rule.staled: unknown rule id (did you mean 'stalled'?)"),
    ('[rules.regions]\nremot = ["新疆"]\n', 2, "rules.regions.remot: unknown key (did you mean 'remote'?)"),
    ('[alerts]\nlanguge = "en"\n', 2, "alerts.languge: unknown key (did you mean 'language'?)"),
    (
        '[[alerts.channels]]\ntype = "console"\n\n[[alerts.channels]]\ntype = "dingtalk"\nname = "ops"\n'
        'webhok_env = "URL"\n',
        7,
        "alerts.channels[1].webhok_env: unknown key (did you mean 'webhook_env'?)",
    ),
    (
        '[alerts]\nchannels = [{ type = "slack", webhook_env = "U", rate_limit = 5 }]\n',
        2,
        "alerts.channels[0].rate_limit: unknown key (did you mean 'rate_limit_per_minute'?)",
    ),
    (
        '[alerts.route]\nreceiver = "console"\ngroup_wiat = "1m"\n',
        3,
        "alerts.route.group_wiat: unknown key (did you mean 'group_wait'?)",
    ),
    (
        '[alerts.route]\nreceiver = "console"\n\n[[alerts.route.routes]]\nreceiver = "console"\ncontinu = true\n',
        6,
        "alerts.route.routes[0].continu: unknown key (did you mean 'continue'?)",
    ),
    (
        '[alerts.quiet_hours]\nstrat = "23:00"\nend = "08:00"\n',
        2,
        "alerts.quiet_hours.strat: unknown key (did you mean 'start'?)",
    ),
    ('[log]\nlvl = "debug"\n', 2, "log.lvl: unknown key (did you mean 'level'?)"),
    ("[demo]\nspeed = 10\n", 2, "demo.speed: unknown key"),
    ('[api]\nlisten = "0.0.0.0:8080"\ntoken_evn = "T"\n', 3, "api.token_evn: unknown key (did you mean 'token_env'?)"),
    ('[api]\ntoken = "abc"\n', 2, "api.token: do not write secrets in the file; set token_env to a variable's name"),
    ("[polling]\ntick_second = 5\n", 2, "polling.tick_second: unknown key (did you mean 'tick_seconds'?)"),
    (
        "[polling.carriers.sf]\nrequests_per_sec = 5\n",
        2,
        "polling.carriers.sf.requests_per_sec: unknown key (did you mean 'requests_per_second'?)",
    ),
    ("[retention]\nfinished_day = 30\n", 2, "retention.finished_day: unknown key (did you mean 'finished_days'?)"),
    (
        "[intercepts]\nstuck_after_minute = 5\n",
        2,
        "intercepts.stuck_after_minute: unknown key (did you mean 'stuck_after_minutes'?)",
    ),
    ('database.ulr = "sqlite:///x.db"\n', 1, "database.ulr: unknown key (did you mean 'url'?)"),
    ("[tickets]\nkeep_for_persn = []\n", 2, "tickets.keep_for_persn: unknown key (did you mean 'keep_for_person'?)"),
    (
        '[alerts]\nchannels = [{ type = "email", host = "h", to_addrs = ["a@b.c"], from_adr = "x@b.c" }]\n',
        2,
        "alerts.channels[0].from_adr: unknown key (did you mean 'from_addr'?)",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), TYPOS, ids=[t[2].split(":")[0] for t in TYPOS])
def test_a_typo_in_any_table_names_file_line_and_suggestion(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path, {"U": "https://hooks.slack.com/services/T/B/x"})
    assert str(err.value) == f"{path}:{line}: {message}" or str(err.value).startswith(f"{path}:{line}: {message} ")


def test_check_config_refuses_a_typo_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, '# production\n[database]\nulr = "postgresql://db.internal/parcels"\n\n[log]\nlvl = "debug"\n'
    )
    res = subprocess.run([CLI, "check-config", "--config", str(path)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {path}:3: database.ulr: unknown key (did you mean 'url'?)"
