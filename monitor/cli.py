"""The ``parcel-monitor`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from monitor import config as config_module
from monitor.logging import configure

DEFAULT_CONFIG = Path("config/default.toml")


def _settings(path: str | None) -> config_module.Settings:
    return _settings_from(path, os.environ)


def _settings_from(path: str | None, environ: Mapping[str, str]) -> config_module.Settings:
    chosen = path or environ.get("PARCEL_MONITOR_CONFIG")
    if chosen is None and DEFAULT_CONFIG.exists():
        chosen = str(DEFAULT_CONFIG)
    try:
        return config_module.load(chosen, environ)
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


@main.command()
@config_option
@click.option("--demo", is_flag=True,
              help="Stream simulated parcels through the sandbox carrier on a fast clock (a temporary database).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="How much faster than the wall clock the monitor's clock runs (demo default 3600: 1 s = 1 h).")
@click.option("--for", "stop_after", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds (demo default 90; 0 runs until Ctrl-C / SIGTERM).")
@click.option("--listen", help="host:port of the HTTP API (default: api.listen, 127.0.0.1:8080).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database schema at start-up.")
def run(config_path: str | None, demo: bool, speed: float | None, stop_after: float | None, listen: str | None,
        no_migrate: bool) -> None:  # fmt: skip
    """Run the monitor: polling, rules, actions and alerts on a schedule, and the HTTP API."""
    import dataclasses
    import tempfile
    from datetime import datetime

    from monitor.clock import AcceleratedClock, SystemClock
    from monitor.daemon.main import RunOptions
    from monitor.daemon.main import run as run_daemon

    environ = dict(os.environ)
    if listen:
        environ["PARCEL_MONITOR_LISTEN"] = listen
    settings = _settings_from(config_path, environ)
    configure(settings.log_format, "warning" if demo else settings.log_level)
    tmp = None
    if demo:
        tmp = tempfile.TemporaryDirectory(prefix="parcel-monitor-demo-")
        if "sandbox" not in settings.carriers:
            settings = dataclasses.replace(settings, carriers={**settings.carriers, "sandbox": {}})
        settings = dataclasses.replace(settings, database_url=f"sqlite:///{Path(tmp.name) / 'demo.db'}")
        speed = speed or 3600.0
        stop_after = 90.0 if stop_after is None else stop_after
    speed = speed or 1.0
    if speed == 1.0:
        clock = SystemClock()
    else:
        start = datetime(2026, 11, 11, 8, 0, tzinfo=settings.timezone) if demo else SystemClock().now()
        clock = AcceleratedClock(start, speed)
    options = RunOptions(speed=speed, demo=demo, stop_after=stop_after or None, migrate=not no_migrate)
    try:
        status = asyncio.run(run_daemon(settings, clock, environ, options, sys.stdout))
    except config_module.ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    finally:
        if tmp is not None:
            tmp.cleanup()
    sys.exit(status)


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


def _no_schema(settings: config_module.Settings) -> None:
    """Say the database was never migrated, and exit 2."""
    click.echo(
        f"error: database {_safe_url(settings.database_url)} has no schema: run `parcel-monitor db upgrade`", err=True
    )
    sys.exit(2)


@main.command("import")
@click.argument("csv_path", metavar="SHIPMENTS.csv", type=click.Path(dir_okay=False))
@config_option
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Rows stored per transaction.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Check every row and say what would be created; store nothing.")
@click.option("--encoding", default="auto", show_default=True,
              help="Text encoding: auto (UTF-8 with or without BOM, else GBK), utf-8, gbk, ...")  # fmt: skip
def import_shipments(csv_path: str, config_path: str | None, batch_size: int, dry_run: bool, encoding: str) -> None:
    """Start watching the shipments of a CSV file; safe to re-run (known parcels are left alone).

    Columns: order_id, carrier, tracking_no, shipped_at (required), pickup_deadline,
    promised_delivery, presale, shop, origin_province, destination_province, amount.
    Exit status: 0 all rows imported, 1 some rows bad (the good ones are stored), 2 the file
    cannot be read or lacks a required column (nothing is stored).
    """
    from monitor import importing
    from monitor.clock import SystemClock
    from monitor.shipments import ShipmentBook
    from monitor.store.db import is_migrated, make_engine
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    try:
        checked = importing.check(Path(csv_path), encoding)
    except importing.UnreadableFile as err:
        click.echo(f"error: {csv_path}: {err}", err=True)
        sys.exit(2)
    if encoding == importing.AUTO and checked.encoding == "gb18030":
        click.echo(f"{csv_path}: not UTF-8, reading it as GBK (GB18030)", err=True)
    if checked.unknown:
        click.echo(f"warning: {csv_path}: unknown column(s) ignored: {', '.join(checked.unknown)}", err=True)
    engine = make_engine(settings.database_url)
    if not is_migrated(engine):
        _no_schema(settings)
    store = Store(engine)
    book = importing.DryRun(store) if dry_run else ShipmentBook(store, settings.rules, SystemClock())
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""  # error lines overwrite the bar, which redraws below

    def bad(row: importing.BadRow) -> None:
        click.echo(f"{clear}{csv_path}:{row.line}: {row}", err=True)

    try:
        with click.progressbar(length=checked.rows, label=f"importing {csv_path}", file=sys.stderr) as bar:
            summary = importing.import_rows(
                importing.rows(checked), settings.carriers, book.add, batch_size, bad, bar.update,
                importing.stored_orders(store),
            )
    finally:
        engine.dispose()
    created = "would create" if dry_run else "created"
    line = (
        f"{csv_path}: read {summary.read}, {created} {summary.created}, already known {summary.known},"
        f" bad {summary.bad}"
    )
    if dry_run:
        line += " (dry run: nothing stored)"
    elif summary.read and not summary.created:
        line += " (nothing new)"
    click.echo(line)
    sys.exit(1 if summary.bad else 0)


@main.command()
@config_option
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1),
              help="How many local days to cover, today included.")  # fmt: skip
@click.option("--shop", help="Only this shop.")
@click.option("--carrier", help="Only this carrier.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def report(config_path: str | None, days: int, shop: str | None, carrier: str | None, output: str) -> None:
    """Print the 24-hour pickup rate, intercepts and anomalies of the last N days."""
    import json

    from monitor.clock import SystemClock
    from monitor.reports import build_report, render_report, report_json
    from monitor.store.db import is_migrated, make_engine
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = make_engine(settings.database_url)
    if not is_migrated(engine):
        _no_schema(settings)
    try:
        result = build_report(Store(engine), SystemClock(), days, settings.timezone, shop, carrier)
    finally:
        engine.dispose()
    if output == "json":
        click.echo(json.dumps(report_json(result), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(result))
