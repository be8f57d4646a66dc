"""The ``parcel-monitor`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from monitor import config as config_module
from monitor.logging import configure

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.people.accounts import People


def _settings(path: str | None) -> config_module.Settings:
    return _settings_from(path, os.environ)


def _settings_from(path: str | None, environ: Mapping[str, str]) -> config_module.Settings:
    chosen = path or environ.get("PARCEL_MONITOR_CONFIG") or None
    try:
        settings = config_module.load(chosen, environ)
    except config_module.ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    if settings.database_url == config_module.default_database_url(environ):
        folder = config_module.data_dir(environ)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            click.echo(f"error: data directory {folder}: {err.strerror or err} (set {config_module.DATA_DIR_ENV})",
                       err=True)  # fmt: skip
            sys.exit(2)
    return settings


def alerting(settings: config_module.Settings) -> dict[str, object]:
    """Return the alert pipeline's settings as the Monitor takes them (fresh rate-limit budgets)."""
    from monitor.alerts.timing import RateLimit

    limits = {c.name: RateLimit(c.rate_limit_per_minute) for c in settings.channels if c.rate_limit_per_minute}
    return {"route": settings.route, "quiet_hours": settings.quiet_hours, "rate_limits": limits}


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML settings file (default: $PARCEL_MONITOR_CONFIG, else the shipped config/default.toml).",
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
@click.option("--strict", is_flag=True, help="A key unknown for its line's kind is an error (default: a warning).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="A progress bar on stderr (default: for long files when stderr is a terminal).",
)
@click.option(
    "--learn-from",
    "learn_from",
    type=click.File("r", encoding="utf-8"),
    help="Learn route norms from this scenario (e.g. last month) before playing (docs/norms.md).",
)
@click.option(
    "--warmup-until",
    "warmup_until",
    metavar="TIME",
    help="Learn route norms from the lines before TIME (ISO 8601 with offset); play the rest.",
)
@click.option(
    "--forecast",
    is_flag=True,
    help="Project each shop's pickup rate every hour; print pickup_rate_forecast crossings ([kpi] target).",
)
def replay(scenario: click.utils.LazyFile, config_path: str | None, summary: bool, database_url: str | None,
           verbose: bool, strict: bool, progress: bool | None, learn_from: click.utils.LazyFile | None,
           warmup_until: str | None, forecast: bool) -> None:  # fmt: skip
    """Run SCENARIO.jsonl through the real rules on a simulated clock (see docs/replay.md)."""
    from datetime import datetime

    from monitor.replay.play import play_file

    until = None
    if warmup_until is not None:
        try:
            until = datetime.fromisoformat(warmup_until)
        except ValueError:
            until = None
        if until is None or until.tzinfo is None:
            click.echo(f"error: --warmup-until: expected ISO 8601 with an offset, got {warmup_until!r}", err=True)
            sys.exit(2)
    settings = _settings(config_path)
    configure(settings.log_format, "info" if verbose else "warning")
    play_file(scenario, settings, strict=strict, summary=summary, database_url=database_url, progress=progress,
              alerting=alerting(settings), learn_from=learn_from, warmup_until=until, forecast=forecast)  # fmt: skip


@main.command()
@config_option
@click.option(
    "--demo",
    is_flag=True,
    help="Stream simulated parcels through the sandbox carrier on a fast clock (a temporary database).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="How much faster than the wall clock the monitor's clock runs (demo default 3600: 1 s = 1 h).",
)
@click.option(
    "--for",
    "stop_after",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop after this many seconds (demo default 90; 0 runs until Ctrl-C / SIGTERM).",
)
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
    pushes: list[str] = []
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
                parsed = settings_type.from_mapping(settings.carriers[code], os.environ)
            except ValueError as err:
                click.echo(f"error: {settings.source}: carriers.{code}: {err}", err=True)
                sys.exit(2)
            if isinstance(getattr(parsed, "push_auth", None), str):  # how the push route authenticates, or off
                pushes.append(f"{code} {parsed.push_auth}")
    click.echo(f"{settings.source}: OK")
    click.echo(f"  database: {_safe_url(settings.database_url)}")
    click.echo(f"  rules: preset {settings.rules.preset}, {len(settings.rules.overrides)} override(s)")
    click.echo(f"  carriers: {', '.join(settings.carriers) or 'none configured'}")
    if pushes:
        click.echo(f"  push: {'; '.join(pushes)}")
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
    from alembic.util.exc import CommandError

    from monitor.store.db import check_reachable, make_engine, upgrade

    settings = _settings(config_path)
    configure(settings.log_format, settings.log_level)
    engine = make_engine(settings.database_url)
    try:
        check_reachable(engine, settings.database_url)
        upgrade(engine, revision)
    except config_module.ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except CommandError as err:
        click.echo(f"error: --revision {revision}: {err}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
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


def _open_database(settings: config_module.Settings, *, create: bool) -> Engine | None:
    """Open the configured database for a command, in one line of error or none.

    ``create``: migrate it as ``run`` does (a command that stores, like ``import``). Otherwise
    a database that has no schema yet is left as it is — not even an empty SQLite file is
    made — and None says there is nothing in it. Unreachable is exit 2, the URL masked.
    """
    from sqlalchemy.engine import make_url

    from monitor.store.db import check_reachable, is_migrated, make_engine, upgrade

    url = settings.database_url
    parsed = make_url(url)
    sqlite_file = parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:")
    if not create and sqlite_file and not Path(str(parsed.database)).exists():
        return None
    engine = make_engine(url)
    try:
        check_reachable(engine, url)
        if is_migrated(engine) or create:
            if create:
                upgrade(engine)
            return engine
    except config_module.ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    engine.dispose()
    return None


def _empty(settings: config_module.Settings, what: str) -> None:
    click.echo(f"database {_safe_url(settings.database_url)} has no schema yet: {what}", err=True)


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
    from monitor.clock import SystemClock
    from monitor.intake import importing
    from monitor.intake.shipments import ShipmentBook
    from monitor.norms.model import NormBook
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
    engine = _open_database(settings, create=not dry_run)
    if engine is None:
        _empty(settings, "nothing is known, every good row would be new")
    store = Store(engine) if engine is not None else None
    if store is None or dry_run:
        book: importing.DryRun | ShipmentBook = importing.DryRun(store)
    else:
        book = ShipmentBook(store, settings.rules, SystemClock(), NormBook.load(store, settings.norms))
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""  # error lines overwrite the bar, which redraws below

    def bad(row: importing.BadRow) -> None:
        click.echo(f"{clear}{csv_path}:{row.line}: {row}", err=True)

    try:
        with click.progressbar(length=checked.rows, label=f"importing {csv_path}", file=sys.stderr) as bar:
            summary = importing.import_rows(
                importing.rows(checked),
                settings.carriers,
                book.add,
                batch_size,
                bad,
                bar.update,
                importing.stored_orders(store) if store is not None else None,
            )
    finally:
        if engine is not None:
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
@click.option("--forecast", is_flag=True, help="Instead: each shop's 30-day pickup rate for the next 7 days.")
def report(
    config_path: str | None, days: int, shop: str | None, carrier: str | None, output: str, forecast: bool
) -> None:
    """Print the 24-hour pickup rate, intercepts and anomalies of the last N days (or, --forecast, the week ahead)."""
    import json

    from monitor.clock import SystemClock
    from monitor.kpi.reports import build_report, render_report, report_json
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = _open_database(settings, create=False)
    if engine is None:
        _empty(settings, "nothing to report (`run`, `import` or `db upgrade` create it)")
        return
    if forecast:
        from monitor.kpi.forecast import build_forecast, forecast_json, render_forecast

        try:
            ahead = build_forecast(Store(engine), SystemClock(), settings.timezone, settings.kpi.pickup_target, shop)
        finally:
            engine.dispose()
        click.echo(json.dumps(forecast_json(ahead), ensure_ascii=False, indent=2) if output == "json"
                   else render_forecast(ahead))  # fmt: skip
        return
    try:
        result = build_report(Store(engine), SystemClock(), days, settings.timezone, shop, carrier)
    finally:
        engine.dispose()
    if output == "json":
        click.echo(json.dumps(report_json(result), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(result))


@main.group()
def user() -> None:
    """Manage the people who use the API and the console: accounts, roles, tokens (docs/people.md)."""


@contextmanager
def _people(config_path: str | None) -> Iterator[People]:
    """Open the database (migrated, as ``import`` does) for a ``user`` command; a refusal is exit 2."""
    from monitor.clock import SystemClock
    from monitor.people.accounts import People
    from monitor.people.errors import PeopleError
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = _open_database(settings, create=True)
    assert engine is not None
    try:
        yield People(Store(engine), SystemClock())
    except PeopleError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()


def _new_password(from_stdin: bool) -> str:
    """Read a password: one line of stdin (``--password-stdin``, for scripts) or a prompt asked twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _refuse(err: Exception) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin instead of a prompt."
)
ROLES = click.Choice(["viewer", "operator", "admin"], case_sensitive=False)


@user.command("add")
@click.argument("name")
@config_option
@click.option("--display-name", help="Name shown to people (default: NAME).")
@click.option("--mobile", default="", help="Mainland mobile for @-mentions in DingTalk/WeCom/Feishu alerts.")
@click.option("--role", type=ROLES, default="viewer", show_default=True, help="What the account may do.")
@password_stdin_option
def user_add(name: str, config_path: str | None, display_name: str | None, mobile: str, role: str,
             password_stdin: bool) -> None:  # fmt: skip
    """Add an account NAME (login, case-insensitive); the password is asked at a prompt, twice."""
    from monitor.people import model
    from monitor.people.errors import LoginTaken, PeopleError, UnknownAccount

    try:  # every field is checked before anyone types a password
        login = model.check_login(name)
        model.check_display_name(display_name if display_name is not None else login)
        model.check_mobile(mobile)
    except PeopleError as err:
        _refuse(err)
    with _people(config_path) as people:
        try:
            people.get(login)
            raise LoginTaken(login)
        except UnknownAccount:
            pass
        added = people.add(login, _new_password(password_stdin), by=model.CLI, display_name=display_name,
                           mobile=mobile, role=role)  # fmt: skip
    click.echo(f"added {added.login} ({added.display_name}), role {added.role}")


@user.command("list")
@config_option
def user_list(config_path: str | None) -> None:
    """List the accounts: login, display name, masked mobile, role, disabled, working tokens."""
    from sqlalchemy import inspect

    from monitor.clock import SystemClock
    from monitor.people.accounts import People
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = _open_database(settings, create=False)
    if engine is None or not inspect(engine).has_table("account"):
        click.echo("no accounts yet (`parcel-monitor user add NAME` makes one)")
        return
    try:
        accounts = People(Store(engine), SystemClock()).accounts()
    finally:
        engine.dispose()
    if not accounts:
        click.echo("no accounts yet (`parcel-monitor user add NAME` makes one)")
        return
    rows = [("login", "display name", "mobile", "role", "disabled", "tokens")]
    rows += [(a.login, a.display_name, a.masked_mobile or "-", a.role.value, "yes" if a.disabled else "no",
              str(a.tokens)) for a in accounts]  # fmt: skip
    widths = [max(_text_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell + " " * (w - _text_width(cell)) for cell, w in zip(r, widths, strict=True)).rstrip())


def _text_width(text: str) -> int:
    """Return the columns ``text`` takes in a terminal (a Chinese character takes two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@user.command("disable")
@click.argument("name")
@config_option
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
def user_disable(name: str, config_path: str | None, enable: bool) -> None:
    """Disable account NAME: its password and tokens stop working at once (--enable undoes it)."""
    from monitor.people.model import CLI

    with _people(config_path) as people:
        account = people.set_disabled(name, not enable, by=CLI)
    click.echo(f"{account.login} {'disabled' if account.disabled else 'enabled'}")


@user.command("reset-password")
@click.argument("name")
@config_option
@password_stdin_option
def user_reset_password(name: str, config_path: str | None, password_stdin: bool) -> None:
    """Give account NAME a new password, asked at a prompt twice (its tokens keep working)."""
    from monitor.people.model import CLI

    with _people(config_path) as people:
        people.get(name)  # an unknown NAME is refused before anyone types a password
        people.reset_password(name, _new_password(password_stdin), by=CLI)
    click.echo(f"password of {name.strip().lower()} changed")


@user.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLES)
@config_option
def user_set_role(name: str, role: str, config_path: str | None) -> None:
    """Give account NAME the role ROLE: viewer (reads), operator (acts), admin (also manages people)."""
    from monitor.people.model import CLI

    with _people(config_path) as people:
        account = people.set_role(name, role, by=CLI)
    click.echo(f"{account.login} is now {account.role}")


@user.command("edit")
@click.argument("name")
@config_option
@click.option("--display-name", help="New display name.")
@click.option("--mobile", help="New mobile for @-mentions (an empty string removes it).")
def user_edit(name: str, config_path: str | None, display_name: str | None, mobile: str | None) -> None:
    """Change the display name or mobile of account NAME."""
    from monitor.people.model import CLI

    with _people(config_path) as people:
        account = people.set_profile(name, by=CLI, display_name=display_name, mobile=mobile)
    click.echo(f"{account.login}: {account.display_name}, mobile {account.masked_mobile or 'none'}")


@user.command("token")
@click.argument("name")
@config_option
@click.option("--label", default="", help="What the token is for (e.g. the script or machine using it).")
@click.option("--revoke", "revoke_id", metavar="ID", help="Revoke the token with this id instead.")
@click.option("--list", "list_tokens", is_flag=True, help="List the account's tokens instead.")
def user_token(name: str, config_path: str | None, label: str, revoke_id: str | None, list_tokens: bool) -> None:
    """Print a new API token of account NAME, once: only its hash is kept (--revoke ID, --list)."""
    from monitor.people.model import CLI

    with _people(config_path) as people:
        if list_tokens:
            for t in people.tokens(name):
                used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
                state = "revoked" if t.revoked else "works"
                click.echo(f"{t.token_id}  {state:<7}  created {t.created_at:%Y-%m-%d %H:%M}  used {used}  {t.label}")
            return
        if revoke_id is not None:
            people.revoke_token(name, revoke_id, by=CLI)
            click.echo(f"token {revoke_id} of {name.strip().lower()} revoked")
            return
        issued = people.issue_token(name, by=CLI, label=label)
    click.echo(f"token {issued.token_id} of {issued.login}: shown once, store it now (only its hash is kept)",
               err=True)  # fmt: skip
    click.echo(issued.token)


@main.group()
def routes() -> None:
    """Learn and show each route's normal pace from delivered parcels (docs/norms.md)."""


@routes.command("learn")
@config_option
def routes_learn(config_path: str | None) -> None:
    """Learn the route norms now from parcels delivered in the window ([norms] window_days)."""
    from monitor.clock import SystemClock
    from monitor.norms.learn import learn
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = _open_database(settings, create=False)
    if engine is None:
        _empty(settings, "no parcels to learn from")
        sys.exit(1)
    try:
        result = learn(Store(engine), SystemClock().now(), settings.norms)
    finally:
        engine.dispose()
    click.echo(f"learned {result.norms} norm(s) from {result.parcels} delivered parcel(s), {result.samples} sample(s),"
               f" in {result.seconds:.1f} s (window {settings.norms.window_days} days)")  # fmt: skip


@routes.command("show")
@config_option
@click.option("--carrier", help="Only this carrier.")
@click.option("--from", "origin", metavar="PROVINCE", help="Origin province (with --to: the norm each phase uses).")
@click.option("--to", "dest", metavar="PROVINCE", help="Destination province.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def routes_show(config_path: str | None, carrier: str | None, origin: str | None, dest: str | None,
                output: str) -> None:  # fmt: skip
    """Print the learned norms in hours; with --from and --to, the chain's pick per phase for that route."""
    import json

    from monitor.norms.model import NormBook
    from monitor.norms.show import render, select_norms
    from monitor.store.store import Store

    settings = _settings(config_path)
    configure(settings.log_format, "warning")
    engine = _open_database(settings, create=False)
    if engine is None:
        _empty(settings, "no route norms learned")
        return
    try:
        book = NormBook.load(Store(engine), settings.norms)
    finally:
        engine.dispose()
    try:
        norms = select_norms(book, settings.rules, carrier, origin, dest)
    except ValueError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    if output == "json":
        click.echo(json.dumps([n.as_dict() for n in norms], ensure_ascii=False, indent=2))
    else:
        click.echo(render(norms))
