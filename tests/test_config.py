"""Settings: the shipped files load, and every mistake names file, key and value."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from monitor.config import ConfigError, load
from tests.helpers import CLI

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


PROD_ENV = {
    "OPS_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=t",
    "OPS_DINGTALK_SECRET": "SEC",
    "ERP_WEBHOOK_URL": "https://erp.example.com/hook",
    "ERP_WEBHOOK_SECRET": "s",
}


def test_shipped_files_load() -> None:
    default = load(ROOT / "config/default.toml", {"PARCEL_MONITOR_DATA_DIR": "/srv/pm"})
    assert default.database_url == "sqlite:////srv/pm/parcel-monitor.db"
    assert [c.type for c in default.channels] == ["console"]
    prod = load(ROOT / "config/production.example.toml", PROD_ENV)
    assert [c.name for c in prod.channels] == ["ops", "erp"]
    assert prod.channels[0].rate_limit_per_minute == 20
    assert prod.route.receiver == "ops" and prod.route.routes[0].receiver == "erp"
    assert prod.quiet_hours is not None and prod.quiet_hours.breakthrough == "critical"
    assert prod.rules.thresholds("sf", "").pickup_hours == 12
    assert prod.rules.thresholds("sandbox", "").pickup_hours == 24
    assert prod.rules.thresholds("sandbox", "海外旗舰店").transit_hours["cross_province"] == 96
    assert prod.rules.spec("delivery_overdue").severity == "info"


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
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load(tmp_path / "nope.toml", {})


def test_check_config_command(tmp_path: Path) -> None:
    prod = str(ROOT / "config/production.example.toml")
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
        ("[alerts]\nroutes = []\n", "alerts.routes: unknown setting"),
    ],
)
def test_alert_pipeline_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text), {})
    assert message in str(err.value)
