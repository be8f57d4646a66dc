"""The production shape: compose.yaml validates, the image installs locked versions before the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_validates(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's package)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.toml").write_text('timezone = "Asia/Shanghai"\n', encoding="utf-8")
    (tmp_path / "deploy.env").write_text("POSTGRES_PASSWORD=pw\nPARCEL_MONITOR_API_TOKEN=t\n", encoding="utf-8")
    result = subprocess.run([compose, "--env-file", "deploy.env", "config"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "postgresql://monitor:pw@db:5432/parcels" in result.stdout
    assert "service_completed_successfully" in result.stdout and "/readyz" in result.stdout
    missing = subprocess.run([compose, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD in deploy.env" in missing.stderr


def _stage(text: str, index: int) -> list[str]:
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    return [line.strip() for line in stages[index].splitlines() if line.strip() and not line.startswith("#")]


def test_image_installs_the_lock_before_the_code() -> None:
    final = _stage((ROOT / "Dockerfile").read_text(encoding="utf-8"), -1)
    lock = next(i for i, line in enumerate(final) if "pip install --require-hashes" in line)
    code = next(i for i, line in enumerate(final) if line.startswith("COPY --from=build"))
    assert lock < code
    assert any("production.example.toml /etc/parcel-monitor/config.toml" in line for line in final)
    assert any(line.startswith("USER ") and "root" not in line for line in final)


def test_the_lock_pins_every_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M))
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is a dependency but not in requirements.lock: re-run pip-compile"
    text = (ROOT / "requirements.lock").read_text()
    assert "--hash=sha256:" in text and "file://" not in text
