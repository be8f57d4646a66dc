"""kill -9 between SF accepting an intercept and the daemon recording it (issue 10, items 4 and 11).

The real daemon runs as a child process against the kit's fake 丰桥, which deduplicates request ids
as SF does (A1007 for a requestID seen before). The fake holds the intercept answer; the daemon is
killed as soon as the fake has the request — SF has accepted, we recorded nothing. After a restart
the outbox retries under the same requestID, gets A1007, and follows the parcel's scans to the end:
the intercept does not stay pending, and SF saw one intercept, asked twice with one request id.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from carriers.testing.server import Reply
from carriers.testing.sf import (
    CHECK_WORD,
    INTERCEPT,
    PARTNER,
    RETURN_ADDRESS_TOML,
    ROUTES,
    FakeSF,
    Seen,
    route_answer,
)
from tests.daemon.process import Daemon, signed_refund, wait_for

CST = timezone(timedelta(hours=8))
NUMBER = "SF1400000000099"


def node(at: datetime, op: str, remark: str) -> dict[str, str]:
    return {"acceptTime": at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), "acceptAddress": "杭州",
            "remark": remark, "opCode": op}  # fmt: skip


def config(tmp_path: Path, database_url: str, sf_url: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"""
[database]
url = "{database_url}"

[carriers.sf]
partner_id = "{PARTNER}"
check_word_env = "TEST_SF_CHECK_WORD"
base_url = "{sf_url}"
retries = 0
timeout_seconds = 60
{RETURN_ADDRESS_TOML}
[polling]
tick_seconds = 1

[log]
format = "json"
level = "info"
""",
        encoding="utf-8",
    )
    return path


def test_killed_after_sf_accepted_the_retry_gets_a1007_and_the_intercept_ends(tmp_path: Path,
                                                                               database_url: str) -> None:  # fmt: skip
    shipped = datetime.now(UTC) - timedelta(hours=3)
    routes = [node(shipped + timedelta(hours=1), "50", "顺丰速运 已收取快件"),
              node(shipped + timedelta(hours=2), "30", "快件在【杭州】已装车")]  # fmt: skip
    lock = threading.Lock()

    def answer_routes(fake: FakeSF, seen: Seen) -> Reply:
        with lock:
            return route_answer({n: list(routes) for n in seen.msg()["trackingNumber"]})

    env = {"TEST_SF_CHECK_WORD": CHECK_WORD}
    with FakeSF() as sf:
        sf.dedupe = True
        sf.on(ROUTES, answer_routes)
        sf.fail("hang", times=1, seconds=60, when=lambda r: r.form().get("serviceCode") == INTERCEPT)
        path = config(tmp_path, database_url, sf.url)
        first = Daemon(["--config", str(path)], env).wait_started()
        try:
            with first.client() as http:
                body = {"order_id": "TB-99", "carrier": "sf", "tracking_no": NUMBER, "shipped_at": shipped.isoformat()}
                assert http.post("/api/v1/shipments", json=body).status_code == 201

                def picked_up() -> Any:
                    return http.get(f"/api/v1/parcels/sf/{NUMBER}").json()["parcel"]["picked_up_at"]

                wait_for(picked_up)
                answer = signed_refund(http, {"refund_id": "RF-99", "order_id": "TB-99", "type": "refund_only"})
                assert answer.status_code == 200, answer.text
                assert [d["decision"] for d in answer.json()["decisions"]] == ["intercept_requested"]
            wait_for(lambda: [s for s in sf.seen if s.form.get("serviceCode") == INTERCEPT], every=0.01)
            first.kill()  # SF has the request (and accepts it); the daemon never hears the answer
        finally:
            if first.proc.poll() is None:
                first.kill()
        sf.clear()
        with lock:  # SF accepted the first request: the parcel is turned round
            routes.append(node(datetime.now(UTC), "99", "应客户要求，快件正在转寄中"))
        # a faster clock, so the dead process's two-minute lease on the action runs out in two seconds
        second = Daemon(["--config", str(path), "--speed", "60"], env).wait_started()
        try:
            with second.client() as http:

                def finished() -> Any:
                    (item,) = http.get("/api/v1/intercepts").json()["items"]
                    return item if item["state"] not in ("requested", "pending") else None

                intercept = wait_for(finished, timeout=15)  # well before its next regular poll (30 s at ×60)
                anomalies = http.get("/api/v1/anomalies", params={"rule": "intercept_failed"}).json()["items"]
        finally:
            second.terminate()
    assert intercept["state"] == "succeeded", intercept
    assert anomalies == []
    calls = [s for s in sf.seen if s.form.get("serviceCode") == INTERCEPT]
    assert len(calls) == 2 and calls[0].form["requestID"] == calls[1].form["requestID"]
