"""Commands that need a database: they create the schema or say so in one line, and never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from monitor.cli import main

CSV = "order_id,carrier,tracking_no,shipped_at\nA1,sandbox,SBX1,2026-11-11T09:00:00+08:00\n"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(tmp_path: Path, url: str, *args: str) -> Result:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n\n[carriers.sandbox]\nseed = 0\n', encoding="utf-8")
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    return CliRunner().invoke(main, [args[0], "--config", str(config), *args[1:]], env=env)


def test_import_creates_the_schema_as_run_does(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(CSV, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = cli(tmp_path, url, "import", str(tmp_path / "s.csv"))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("read 1, created 1, already known 0, bad 0\n")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT order_id, tracking_no FROM parcel")).all() == [("A1", "SBX1")]
    engine.dispose()


def test_dry_run_on_a_new_database_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(CSV, encoding="utf-8")
    result = cli(tmp_path, f"sqlite:///{tmp_path / 'new.db'}", "import", str(tmp_path / "s.csv"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "has no schema yet: nothing is known" in result.stderr
    assert "would create 1" in result.stdout
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("command", [("report",), ("db", "upgrade"), ("import", "s.csv")])
def test_an_unreachable_database_is_one_line_with_the_password_masked(tmp_path: Path,
                                                                       command: tuple[str, ...]) -> None:  # fmt: skip
    (tmp_path / "s.csv").write_text(CSV, encoding="utf-8")
    url = f"postgresql://monitor:s3cret@127.0.0.1:{closed_port()}/parcels"
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in command]
    if command[0] == "db":
        config = tmp_path / "config.toml"
        config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
        result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)],
                                    env={"PARCEL_MONITOR_DATABASE_URL": None})  # fmt: skip
    else:
        result = cli(tmp_path, url, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: database.url: cannot open postgresql://monitor:***@127.0.0.1:")
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_a_bad_revision_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config), "--revision", "nope"],
                                env={"PARCEL_MONITOR_DATABASE_URL": None})  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --revision nope: ") and "nope" in line[len("error: --revision nope: ") :]
