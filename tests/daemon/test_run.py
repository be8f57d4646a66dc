"""``parcel-monitor run`` as a real process: start, API, refund → intercept, SIGTERM, restart.

The carrier is SF Express's 丰桥 on a local server (carriers/testing/sf.py) that
checks signatures, so the intercept is a real HTTP call the test can count.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carriers.testing.server import Reply
from carriers.testing.sf import CHECK_WORD, INTERCEPT, PARTNER, RETURN_ADDRESS_TOML, ROUTES
from tests.carriers.payloads import FakeSF
from tests.carriers.payloads import sf_recorded as recorded
from tests.daemon.process import Daemon, signed_refund, wait_for

BACKENDS = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
NUMBER = "SF1400000000001"


class InTransitSF(FakeSF):
    """丰桥 that knows one parcel picked up and on its way, and answers intercepts slowly."""

    intercept_delay = 3.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.on(ROUTES, lambda fake, seen: Reply(200, in_transit_body()))
        self.on(INTERCEPT, lambda fake, seen: Reply(*fake.fixture("intercept_accepted"), delay=self.intercept_delay))


def in_transit_body() -> dict[str, Any]:
    envelope = recorded("route_delivered")["body"]
    data = json.loads(envelope["apiResultData"])
    route = data["msgData"]["routeResps"][0]
    route["routes"] = [r for r in route["routes"] if r["opCode"] in ("50", "30", "36", "31")]
    return {**envelope, "apiResultData": json.dumps(data, ensure_ascii=False)}


def write_config(tmp_path: Path, database_url: str, sf_url: str) -> Path:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f"""
[database]
url = "{database_url}"

[carriers.sf]
partner_id = "{PARTNER}"
check_word_env = "TEST_SF_CHECK_WORD"
base_url = "{sf_url}"
retries = 0
{RETURN_ADDRESS_TOML}
[polling]
tick_seconds = 1

[log]
format = "json"
level = "info"
""",
        encoding="utf-8",
    )
    return config


def ship(client: Any) -> None:
    shipped = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    body = {"order_id": "TB1", "carrier": "sf", "tracking_no": NUMBER, "shipped_at": shipped, "amount": "88.00"}
    answer = client.post("/api/v1/shipments", json=body)
    assert answer.status_code in (200, 201), answer.text


@BACKENDS
def test_sigterm_finishes_the_intercept_in_flight_and_a_restart_duplicates_nothing(
    tmp_path: Path, database_url: str
) -> None:
    with InTransitSF() as sf:
        config = write_config(tmp_path, database_url, sf.url)
        env = {"TEST_SF_CHECK_WORD": CHECK_WORD}
        first = Daemon(["--config", str(config)], env).wait_started()
        with first.client() as client:
            ship(client)
            wait_for(lambda: client.get(f"/api/v1/parcels/sf/{NUMBER}").json()["parcel"]["status"] == "in_transit")
            answers: list[Any] = []
            refund = threading.Thread(target=lambda: answers.append(signed_refund(
                client, {"refund_id": "RF1", "order_id": "TB1", "type": "refund_only"})))  # fmt: skip
            refund.start()
            wait_for(lambda: any(s.form.get("serviceCode") == "EXP_RECE_WANTED_INTERCEPT" for s in sf.seen))
            started = time.monotonic()
            status = first.terminate()  # while the carrier is still answering the intercept
            took = time.monotonic() - started
            refund.join(10)
        assert status == 0, first.output()
        assert took >= 1.0  # it waited for the carrier's answer rather than dropping it
        assert answers and answers[0].status_code == 200, first.output()
        decisions = answers[0].json()["decisions"]
        assert [d["decision"] for d in decisions] == ["intercept_requested"]  # answered at once; the call follows

        second = Daemon(["--config", str(config)], env).wait_started()
        with second.client() as client:
            time.sleep(2.5)  # a couple of poll and dispatch rounds
            intercepts = client.get("/api/v1/intercepts").json()["items"]
            parcel = client.get(f"/api/v1/parcels/sf/{NUMBER}").json()
        assert second.terminate() == 0
    calls = [s for s in sf.seen if s.form.get("serviceCode") == "EXP_RECE_WANTED_INTERCEPT"]
    assert len(calls) == 1  # never asked twice, across the restart
    assert len(intercepts) == 1 and intercepts[0]["state"] == "accepted"
    assert parcel["parcel"]["intercept_state"] == "accepted"


def test_run_refuses_to_start_without_an_api_token(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n', encoding="utf-8")
    daemon = Daemon(["--config", str(config)], {"PARCEL_MONITOR_API_TOKEN": ""})
    assert daemon.proc.wait(30) == 2
    time.sleep(0.2)
    assert "PARCEL_MONITOR_API_TOKEN" in daemon.output()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    config = tmp_path / "m.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "m.db"}"\n', encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(["--config", str(config), "--listen", f"127.0.0.1:{port}"])
        assert daemon.proc.wait(30) == 2
    time.sleep(0.2)
    assert f"api.listen: cannot listen on 127.0.0.1:{port}" in daemon.output()


def test_the_demo_shows_anomalies_tickets_and_an_interception_within_a_minute(tmp_path: Path) -> None:
    daemon = Daemon(["--demo", "--for", "20"], {"PARCEL_MONITOR_API_TOKEN": ""}, cwd=tmp_path)
    daemon.wait_started()
    with daemon.client() as client:
        docs = client.get("/docs")
        spec = client.get("/openapi.json")
    assert daemon.proc.wait(60) == 0, daemon.output()
    out = daemon.output()
    assert docs.status_code == 200 and spec.status_code == 200
    assert "24小时未揽收" in out and "已建工单" in out
    assert "[仅退款]" in out
    assert not list(tmp_path.iterdir())  # the demo's database was temporary


@BACKENDS
def test_sigterm_lets_a_poll_round_in_flight_finish(tmp_path: Path, database_url: str) -> None:
    with InTransitSF(delay=2.0) as sf:  # every answer takes 2 s
        config = write_config(tmp_path, database_url, sf.url)
        env = {"TEST_SF_CHECK_WORD": CHECK_WORD}
        first = Daemon(["--config", str(config)], env).wait_started()
        with first.client() as client:
            ship(client)
        wait_for(lambda: any(s.form.get("serviceCode") == "EXP_RECE_SEARCH_ROUTES" for s in sf.seen))
        assert first.terminate() == 0, first.output()
        second = Daemon(["--config", str(config)], env).wait_started()
        with second.client() as client:
            parcel = client.get(f"/api/v1/parcels/sf/{NUMBER}").json()
        assert second.terminate() == 0
    routes = [s for s in sf.seen if s.form.get("serviceCode") == "EXP_RECE_SEARCH_ROUTES"]
    assert parcel["parcel"]["status"] == "in_transit"  # the round in flight was written before exit
    assert len(routes) == 1  # …and its parcel was not asked again after the restart
    assert '"clean": true' in first.output() and "CancelledError" not in first.output()
