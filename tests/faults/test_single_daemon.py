"""Start-up refusals: one line and exit 2, never a traceback (issue 10 items 10 and 11).

A second daemon on one SQLite file would share its outbox with the first (SQLite has one daemon
by design; replicas share PostgreSQL), so it is refused while the first holds ``<db>.lock``. A
database that does not exist or cannot be reached names the URL (password masked) and the problem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carriers.testing.kuaidi100 import Fleet, quiet_in_transit
from carriers.testing.server import closed_port
from tests.daemon.process import Daemon
from tests.faults.daemons import ENV, write_config


def refused(daemon: Daemon) -> str:
    """Wait for a daemon that must not start; return its one line of error."""
    status = daemon.proc.wait(60)
    lines = [line for line in daemon.errors if line.strip()]
    assert status == 2, daemon.output()
    assert "Traceback" not in daemon.output()
    assert len(lines) == 1, daemon.output()
    return lines[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_second_daemon_on_one_sqlite_file_is_refused_with_one_line(tmp_path: Path, database_url: str) -> None:
    with Fleet(quiet_in_transit(datetime.now(UTC) - timedelta(hours=1))) as carrier:
        config = write_config(tmp_path, database_url, carrier.url)
        first = Daemon(["--config", str(config)], ENV).wait_started()
        try:
            line = refused(Daemon(["--config", str(config)], ENV))
            assert "in use by another parcel-monitor" in line and database_url in line, line
            assert f"pid {first.proc.pid}" in line
        finally:
            assert first.terminate() == 0, first.output()
        # the lock goes with the process (kill -9 included): the next daemon starts
        second = Daemon(["--config", str(config)], ENV).wait_started()
        second.kill()
        third = Daemon(["--config", str(config)], ENV).wait_started()
        assert third.terminate() == 0, third.output()


def test_a_sqlite_path_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'monitor.db'}"
    line = refused(Daemon(["--config", str(write_config(tmp_path, url, "http://127.0.0.1:9"))], ENV))
    assert line == f"error: database.url: cannot open {url}: unable to open database file", line


def test_a_postgresql_url_to_a_closed_port_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql://ops:s3cret-pw@127.0.0.1:{port}/monitor"
    line = refused(Daemon(["--config", str(write_config(tmp_path, url, "http://127.0.0.1:9"))], ENV))
    assert line.startswith(f"error: database.url: cannot open postgresql://ops:***@127.0.0.1:{port}/monitor: ")
    assert "Connection refused" in line and "s3cret-pw" not in line


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_database_that_does_not_exist_is_one_line(tmp_path: Path, database_url: str) -> None:
    url = database_url.split("?")[0].rsplit("/", 1)[0] + "/no_such_database_pm"
    line = refused(Daemon(["--config", str(write_config(tmp_path, url, "http://127.0.0.1:9"))], ENV))
    assert "cannot open" in line and 'database "no_such_database_pm" does not exist' in line, line


def test_no_migrate_on_an_empty_database_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    config = write_config(tmp_path, url, "http://127.0.0.1:9")
    line = refused(Daemon(["--config", str(config), "--no-migrate"], ENV))
    assert line.startswith(f"error: database.url: {url} has no schema: run `parcel-monitor db upgrade`"), line
