"""Logs as data (no secrets, no phone numbers), the demo, and `db upgrade`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
from pathlib import Path

import structlog
from sqlalchemy import create_engine, inspect

from monitor.config import load
from monitor.demo import run_demo
from monitor.logging import configure, mask_phone_numbers
from tests.helpers import CLI


def test_log_lines_are_json_and_hide_secrets_and_phones() -> None:
    stream = io.StringIO()
    configure("json", "info", stream)
    structlog.get_logger("t").info("carrier.call", app_secret="s3cr3t", note="call 13812345678 now")
    line = json.loads(stream.getvalue())
    assert line["event"] == "carrier.call"
    assert line["app_secret"] == "***"
    assert line["note"] == "call 138****5678 now"
    assert "s3cr3t" not in stream.getvalue() and "13812345678" not in stream.getvalue()


def test_mask_leaves_other_numbers_alone() -> None:
    assert mask_phone_numbers("SF1234567890123 order 20261111000123") == "SF1234567890123 order 20261111000123"


def test_demo_shows_anomalies_tickets_and_interceptions() -> None:
    out = io.StringIO()
    with structlog.testing.capture_logs() as logs:
        counts = asyncio.run(run_demo(load(None, {}), parcels=60, days=4, out=out))
    text = out.getvalue()
    assert counts["anomaly_opened"] > 0 and counts["ticket_opened"] > 0
    assert counts["intercept_requested"] + counts["shipment_held"] > 0
    assert "24小时未揽收" in text and "[仅退款]" in text and "24小时揽收及时率" in text
    assert counts["alert_sent"] == text.count(" · 模拟快递 ")  # every alert reached the console
    assert not any("1" in str(v) and mask_phone_numbers(str(v)) != str(v) for e in logs for v in e.values())


def test_db_upgrade_command_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = os.environ | {"PARCEL_MONITOR_DATABASE_URL": url}
    for _ in range(2):  # safe to run on every deploy
        res = subprocess.run([CLI, "db", "upgrade"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert "parcel" in inspect(create_engine(url)).get_table_names()
