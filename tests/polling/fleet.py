"""A Kuaidi100 query endpoint on 127.0.0.1 for many parcels at once, for the poller's tests and B3.

It checks every request as Kuaidi100 does (form fields, ``sign = MD5(param + key +
customer)``), answers in the documented 实时快递查询 format from a per-number script of
scans, and records when each number was asked (on the clock it is given), so tests can
check cadence, quotas and Kuaidi100's 48-queries-per-24-hours lock from the carrier's side.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CUSTOMER = "8A2C1F3B9E7D4C6A0B5E3D2F1A9C8B7E"
KEY = "kQ3xR7vT2mW9pL5n"
COMPANY = "zhongtong"
CST = timezone(timedelta(hours=8))

#: A scan: when, Kuaidi100's statusCode, and the text.
Scan = tuple[datetime, str, str]
Script = Callable[[str, datetime], list[Scan] | None]


def quiet_in_transit(picked_up: datetime) -> Script:
    """Every number: picked up at ``picked_up``, then nothing new, ever."""
    return lambda _number, _now: [(picked_up, "103", "【杭州市】快递员已揽收")]


def body_for(number: str, scans: list[Scan]) -> dict[str, Any]:
    """Return a successful query answer (newest scan first, resultv2=4 fields)."""
    data = [
        {
            "time": f"{t.astimezone(CST):%Y-%m-%d %H:%M:%S}",
            "ftime": f"{t.astimezone(CST):%Y-%m-%d %H:%M:%S}",
            "context": text,
            "status": "在途",
            "statusCode": code,
            "areaName": "浙江,杭州市",
            "location": "杭州转运中心",
        }
        for t, code, text in sorted(scans, reverse=True)
    ]
    state = "3" if any(code == "3" for _, code, _ in scans) else "0"
    return {"message": "ok", "nu": number, "ischeck": "1" if state == "3" else "0", "condition": "F00",
            "com": COMPANY, "status": "200", "state": state, "data": data}  # fmt: skip


class Fleet:
    """The fake endpoint. ``script(number, now)`` gives a number's scans, or None if unknown."""

    def __init__(self, script: Script, clock: Any = None, delay: float = 0.0) -> None:
        self.script = script
        self.clock = clock
        self.delay = delay
        self.status = 200  # set to 503 (or 429) to make the carrier fail
        self.asked: dict[str, list[datetime]] = defaultdict(list)
        self.requests = 0
        self.bad_signatures = 0
        self.on_request: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def most_in_24h(self) -> int:
        """Return the most queries of any one number inside any 24-hour window."""
        worst = 0
        for times in self.asked.values():
            times = sorted(times)
            start = 0
            for end, moment in enumerate(times):
                while moment - times[start] >= timedelta(hours=24):
                    start += 1
                worst = max(worst, end - start + 1)
        return worst

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        param = form.get("param", "")
        sign = hashlib.md5((param + KEY + CUSTOMER).encode()).hexdigest().upper()
        if form.get("customer") != CUSTOMER or form.get("sign") != sign:
            self.bad_signatures += 1
            return 200, {"result": False, "returnCode": "503", "message": "验证签名失败"}
        if self.status != 200:
            return self.status, "<html><body>busy</body></html>"
        query = json.loads(param)
        number = query.get("num", "")
        now = self.clock.now() if self.clock is not None else datetime.now(CST)
        with self._lock:
            self.asked[number].append(now)
            self.requests += 1
        scans = self.script(number, now)
        if scans is None:
            return 200, {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
        return 200, body_for(number, [s for s in scans if s[0] <= now])

    def __enter__(self) -> Fleet:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
                if owner.on_request is not None:
                    owner.on_request()
                if owner.delay:
                    time.sleep(owner.delay)
                status, body = owner.answer(form) if self.path == "/poll/query.do" else (404, "not found")
                data = (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.daemon_threads = True
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.request_queue_size = 256
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
