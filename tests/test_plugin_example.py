"""The example external plugin: installed like any package, discovered, and used end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "acme-carrier-plugin"
ANSWER = {"parcels": [{"no": "A1", "scans": [{"code": "PU", "at": "2026-11-11 09:30:00", "text": "揽收"},
                                            {"code": "ZZ", "at": "2026-11-11 12:00:00", "text": "?"}]}]}  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    # --no-build-isolation: build with the test environment's setuptools and wheel, offline.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    cmd = [*pip, "--target", str(target), str(PLUGIN)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return target


@pytest.fixture
def acme_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(ANSWER).encode() if self.path.startswith("/track?no=A1") else b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


SCRIPT = """
import asyncio, json, sys
import httpx
from carriers import registry
reg = registry.load()
info = reg.get("acme")
async def main():
    async with httpx.AsyncClient() as http:
        adapter = info.factory({"base_url": sys.argv[1]}, {"http": http, "clock": None, "environ": {}})
        (result,) = await adapter.track(["A1"])
        return [(e.status, e.raw_code, e.time.isoformat()) for e in result.events]
print(json.dumps({"carriers": sorted(reg.adapters), "failures": reg.failures, "events": asyncio.run(main())}))
"""


def test_installed_plugin_is_discovered_and_tracks(installed: Path, acme_server: str) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(installed), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", SCRIPT, acme_server], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert "acme" in found["carriers"] and found["failures"] == {}
    assert found["events"] == [
        ["picked_up", "PU", "2026-11-11T09:30:00+08:00"],
        [None, "ZZ", "2026-11-11T12:00:00+08:00"],
    ]


def test_check_config_knows_the_installed_plugin(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "acme.toml"
    config.write_text('[carriers.acme]\nbase_url = "ftp://nope"\n', encoding="utf-8")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(installed), str(ROOT)])}
    cli = [sys.executable, "-c", "from monitor.cli import main; main()", "check-config", "--config", str(config)]
    res = subprocess.run(cli, capture_output=True, text=True, env=env)
    assert res.returncode == 2
    assert "carriers.acme: base_url: expected an http(s) URL, got 'ftp://nope'" in res.stderr
