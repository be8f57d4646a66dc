"""The wheel as a user installs it: a fresh virtualenv, commands run from empty folders.

The wheel is built from this checkout and installed without its dependencies into a new
virtualenv that borrows them from the test environment (a ``.pth`` line), so nothing is
downloaded; what is tested is what the wheel carries: the shipped default configuration,
the migrations, the entry points. The image's entry command is run the same way, outside Docker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CSV = "order_id,carrier,tracking_no,shipped_at\nA1,sandbox,SBX1,2026-11-11T09:00:00+08:00\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it into a new virtualenv; return the venv's bin folder."""
    where = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(where / "dist"), str(ROOT)],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = (where / "dist").glob("parcel_monitor-*.whl")
    env_dir = where / "venv"
    venv.create(env_dir, with_pip=False)
    purelib = Path(subprocess.run([str(env_dir / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())  # fmt: skip
    (purelib / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(env_dir / "bin" / "python"), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)  # fmt: skip
    return env_dir / "bin"


def command(bin_dir: Path, cwd: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    cwd.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    return subprocess.run([str(bin_dir / "parcel-monitor"), *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_the_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(installed / "python"), "-c", "import monitor; print(monitor.__file__)"],
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout  # fmt: skip
    assert str(installed.parent) in out and str(ROOT) not in out


def test_check_config_outside_the_repository_has_the_shipped_default(installed: Path, tmp_path: Path) -> None:
    env = {"PARCEL_MONITOR_DATA_DIR": str(tmp_path / "data")}
    result = command(installed, tmp_path / "anywhere", "check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<built-in default: config/default.toml>: OK")
    assert "  carriers: sandbox\n" in result.stdout
    assert f"  database: sqlite:///{tmp_path / 'data' / 'parcel-monitor.db'}\n" in result.stdout


def test_commands_from_two_folders_share_one_database(installed: Path, tmp_path: Path) -> None:
    env = {"PARCEL_MONITOR_DATA_DIR": str(tmp_path / "data")}
    csv = tmp_path / "shipments.csv"
    csv.write_text(CSV, encoding="utf-8")
    first = command(installed, tmp_path / "one", "import", str(csv), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith("read 1, created 1, already known 0, bad 0\n")
    second = command(installed, tmp_path / "two", "import", str(csv), env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("read 1, created 0, already known 1, bad 0 (nothing new)\n")
    assert (tmp_path / "data" / "parcel-monitor.db").exists()
    assert not list((tmp_path / "one").iterdir()) and not list((tmp_path / "two").iterdir())


def test_run_from_an_empty_folder_prints_its_database(installed: Path, tmp_path: Path) -> None:
    env = {"PARCEL_MONITOR_DATA_DIR": str(tmp_path / "data"), "PARCEL_MONITOR_API_TOKEN": "t0ken",
           "PARCEL_MONITOR_LOG_LEVEL": "warning"}  # fmt: skip
    result = command(installed, tmp_path / "empty", "run", "--listen", "127.0.0.1:0", "--for", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert f"  database: sqlite:///{tmp_path / 'data' / 'parcel-monitor.db'}" in result.stdout
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "empty").iterdir())


def test_the_image_entry_command_says_what_to_set(installed: Path, tmp_path: Path) -> None:
    """The image runs `parcel-monitor run` on the production example: without secrets it names one."""
    env = {"PARCEL_MONITOR_CONFIG": str(ROOT / "config" / "production.example.toml")}
    result = command(installed, tmp_path, "run", env=env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "environment variable" in line and "is not set" in line, line


def test_the_console_renders_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """The console's templates and assets are package data: the installed daemon serves its login page and CSS."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    env = {**clean, "PARCEL_MONITOR_DATA_DIR": str(tmp_path / "data"), "PARCEL_MONITOR_API_TOKEN": "t0ken"}
    args = [str(installed / "parcel-monitor"), "run", "--listen", "127.0.0.1:0", "--for", "20"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if found := re.search(r"http://127\.0\.0\.1:(\d+)/docs", line):
                port = found.group(1)
                break
        assert port, proc.stderr.read() if proc.stderr else ""
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            login = http.get("/login")
            css = http.get("/console/static/console.css")
            js = http.get("/console/static/console.js")
        assert login.status_code == 200 and "登录" in login.text and 'name="password"' in login.text
        assert css.status_code == 200 and js.status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
