"""Run ``parcel-monitor run`` as a real child process and talk to it over loopback (benchmarks, chaos runs).

The process's stdout and stderr are collected by threads; its port is read from the start banner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

TOKEN = "test-token-7f3a"
REFUND_SECRET = "refund-secret-91c2"
BINARY = Path(sys.executable).with_name("parcel-monitor")
T = TypeVar("T")


class Daemon:
    """A daemon child process; its output is collected, its port read from the banner."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, listen: str = "127.0.0.1:0"
    ) -> None:
        full_env = {**os.environ, "PARCEL_MONITOR_API_TOKEN": TOKEN, "PARCEL_MONITOR_REFUND_SECRET": REFUND_SECRET,
                    **(env or {})}  # fmt: skip
        self.proc = subprocess.Popen(
            [str(BINARY), "run", "--listen", listen, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd,
        )  # fmt: skip
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.port: int | None = None
        self._started = threading.Event()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors, False), daemon=True).start()

    def _read(self, stream: Any, into: list[str], banner: bool) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            found = re.search(r"http://127\.0\.0\.1:(\d+)/docs", line) if banner else None
            if found:
                self.port = int(found.group(1))
                self._started.set()

    def wait_started(self, timeout: float = 30) -> Daemon:
        if not self._started.wait(timeout):
            self.proc.kill()
            raise AssertionError(f"daemon did not start: {self.output()[-4000:]}")
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=timeout)

    def terminate(self, timeout: float = 40) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last write."""
        self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return "\n".join(self.lines + self.errors)


def sign_refund(body: bytes, timestamp: str, secret: str = REFUND_SECRET) -> str:
    """Return the refund webhook's ``X-Parcel-Monitor-Signature`` value (docs/api.md)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_refund(client: httpx.Client, body: dict[str, Any], timestamp: int | None = None) -> httpx.Response:
    """POST a refund webhook signed as docs/api.md says."""
    raw = json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", "X-Parcel-Monitor-Timestamp": ts,
               "X-Parcel-Monitor-Signature": sign_refund(raw, ts)}  # fmt: skip
    return client.post("/api/v1/refunds", content=raw, headers=headers)


def wait_for(predicate: Callable[[], T], timeout: float = 20, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")
