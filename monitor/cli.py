"""The ``parcel-monitor`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from monitor import config as config_module
from monitor.logging import configure

DEFAULT_CONFIG = Path("config/default.toml")


def _settings(path: str | None) -> config_module.Settings:
    chosen = path or os.environ.get("PARCEL_MONITOR_CONFIG")
    if chosen is None and DEFAULT_CONFIG.exists():
        chosen = str(DEFAULT_CONFIG)
    try:
        return config_module.load(chosen, os.environ)
    except config_module.ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


def alerting(settings: config_module.Settings) -> dict[str, object]:
    """Return the alert pipeline's settings as the Monitor takes them (fresh rate-limit budgets)."""
    from monitor.alerts.timing import RateLimit

    limits = {c.name: RateLimit(c.rate_limit_per_minute) for c in settings.channels if c.rate_limit_per_minute}
    return {"route": settings.route, "quiet_hours": settings.quiet_hours, "rate_limits": limits}


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML settings file (default: $PARCEL_MONITOR_CONFIG, then config/default.toml, then built-in).",
)


@click.group()
@click.version_option(package_name="parcel-monitor")
def main() -> None:
    """Watch shipped parcels, catch pickup misses, stalls and exceptions, intercept on refund-only."""


@main.command()
@click.argument("scenario", type=click.File("r", encoding="utf-8"))
@config_option
@click.option("--summary", is_flag=True, help="Print one JSON object of counts and the pickup rate at the end.")
@click.option("--database-url", help="Replay into this (empty) database instead of a temporary SQLite file.")
@click.option("--verbose", is_flag=True, help="Log what the engine does to stderr.")
def replay(scenario: click.utils.LazyFile, config_path: str | None, summary: bool, database_url: str | None,
           verbose: bool) -> None:  # fmt: skip
    """Run SCENARIO.jsonl through the real rules on a simulated clock (see docs/replay.md)."""
    from monitor.replay.runner import replay as run_replay
    from monitor.replay.scenario import ScenarioError, parse

    settings = _settings(config_path)
    configure(settings.log_format, "info" if verbose else "warning")
    try:
        steps = parse(scenario)
    except ScenarioError as err:
        click.echo(f"error: {scenario.name}: {err}", err=True)
        sys.exit(2)
    if not steps:
        click.echo(f"error: {scenario.name}: the scenario has no lines", err=True)
        sys.exit(2)
    channels = [c.name for c in settings.channels]
    coro = run_replay(steps, settings.rules, sys.stdout, channels=channels, database_url=database_url,
                      summary=summary, alerting=alerting(settings))  # fmt: skip
    asyncio.run(coro)


@main.command("check-config")
@config_option
def check_config(config_path: str | None) -> None:
    """Validate the settings file and say what it sets up."""
    settings = _settings(config_path)
    from carriers import registry

    reg = registry.load()
    for code in settings.carriers:
        if code not in reg.adapters:
            known = ", ".join(sorted(reg.adapters))
            click.echo(f"error: {settings.source}: carriers.{code}: no such carrier plugin (installed: {known})",
                       err=True)  # fmt: skip
            sys.exit(2)
        info = reg.adapters[code]
        settings_type = info.settings_type
        if settings_type is not None and hasattr(settings_type, "from_mapping"):
            try:
                settings_type.from_mapping(settings.carriers[code], os.environ)
            except ValueError as err:
                click.echo(f"error: {settings.source}: carriers.{code}: {err}", err=True)
                sys.exit(2)
    click.echo(f"{settings.source}: OK")
    click.echo(f"  database: {_safe_url(settings.database_url)}")
    click.echo(f"  rules: preset {settings.rules.preset}, {len(settings.rules.overrides)} override(s)")
    click.echo(f"  carriers: {', '.join(settings.carriers) or 'none configured'}")
    click.echo(f"  alert channels: {', '.join(f'{c.name} ({c.type})' for c in settings.channels) or 'none'}")
    click.echo(
        f"  alert route: root → {settings.route.receiver or 'none'}, {len(settings.route.routes)} child route(s)"
    )
    if settings.quiet_hours:
        q = settings.quiet_hours
        click.echo(f"  quiet hours: {q.start:%H:%M}–{q.end:%H:%M}, {q.breakthrough} breaks through")
    for name, error in reg.failures.items():
        click.echo(f"  warning: carrier plugin {name} failed to load: {error}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@config_option
@click.option("--revision", default="head", show_default=True, help="Schema revision to upgrade to.")
def db_upgrade(config_path: str | None, revision: str) -> None:
    """Create or migrate the schema (safe to run on every deploy)."""
    from monitor.store.db import make_engine, upgrade

    settings = _settings(config_path)
    configure(settings.log_format, settings.log_level)
    engine = make_engine(settings.database_url)
    upgrade(engine, revision)
    click.echo(f"database {_safe_url(settings.database_url)} is at revision {revision}")


@main.command()
@config_option
@click.option("--parcels", default=200, show_default=True, help="How many simulated parcels to ship.")
@click.option("--days", default=5.0, show_default=True, help="How many simulated days to run.")
def demo(config_path: str | None, parcels: int, days: float) -> None:
    """Ship simulated parcels with the sandbox carrier and watch the monitor act, on a fast clock."""
    from monitor.demo import run_demo

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    asyncio.run(run_demo(settings, parcels=parcels, days=days, out=sys.stdout))
