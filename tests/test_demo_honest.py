"""The demos are honest: what they print works as printed, and what leaves them carries real time.

``run --demo`` runs as a child process (tests/daemon/process.py) with a 3600× business clock;
the refund recipe it prints is run in a shell as a user would paste it, and DingTalk and
Feishu receivers (monitor/testing/receivers.py) check the signatures of what reaches them.
``parcel-monitor demo`` runs in-process on its simulated clock.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from monitor import config as config_module
from monitor.demo import carrier_name, run_demo
from monitor.testing.receivers import FakeDingTalk, FakeFeishu
from tests.daemon.process import Daemon, wait_for

LINE = re.compile(r"^(\d\d-\d\d \d\d:\d\d) (.*)$")
NO_SECRETS = {"PARCEL_MONITOR_API_TOKEN": "", "PARCEL_MONITOR_REFUND_SECRET": ""}


def timed_lines(out: str) -> list[tuple[str, str]]:
    """Return the demo's timestamped lines as (MM-DD HH:MM, text)."""
    return [(m.group(1), m.group(2)) for line in out.splitlines() if (m := LINE.match(line))]


def recipe(daemon: Daemon) -> str:
    """Return the refund recipe the banner printed, as the shell lines a user would paste."""
    wait_for(lambda: any(line.startswith("    curl ") for line in daemon.lines))
    start = next(i for i, line in enumerate(daemon.lines) if line.startswith("  a refund-only request"))
    block = []
    for line in daemon.lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block)


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl")
def test_a_refund_signed_with_the_printed_recipe_intercepts_and_shows_in_order(tmp_path: Path) -> None:
    daemon = Daemon(["--demo", "--for", "15"], NO_SECRETS, cwd=tmp_path).wait_started()
    script = recipe(daemon)
    secret = next(line.split(": ", 1)[1] for line in daemon.lines if line.startswith("  demo refund secret: "))
    assert secret and f"-hmac {secret} " in script  # the secret is shown beside the token, and used
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    answer = json.loads(done.stdout)  # signed with `date +%s`: the wall clock, not the 3600× one
    decisions = [d["decision"] for d in answer["decisions"]]
    assert decisions and set(decisions) <= {"intercept_requested", "held", "skipped"}, done.stdout
    order_id = json.loads(re.search(r"BODY='(.*)'", script).group(1))["order_id"]  # type: ignore[union-attr]
    assert daemon.proc.wait(60) == 0, daemon.output()
    out = daemon.output()
    refund_lines = [text for _, text in timed_lines(out) if f"[仅退款] 订单 {order_id} " in text]
    assert refund_lines, out  # the API's refund shows in the output like the demo's own
    stamps = [when for when, _ in timed_lines(out)]
    assert stamps == sorted(stamps)  # one time line, whatever printed it
    assert " sandbox SBX" not in out and "模拟快递 SBX" in out
    last = [line for line in daemon.lines if line.strip()][-1]
    assert last.startswith("汇总: 24小时揽收及时率 ") and "intercept_requested" in last, out


def test_channel_signatures_in_the_demo_carry_wall_clock_time(tmp_path: Path) -> None:
    with FakeDingTalk("ding-token", secret="SECding") as ding, FakeFeishu("fei-token", secret="fei-secret") as fei:
        config = tmp_path / "demo.toml"
        config.write_text(
            f"""
[alerts]
language = "en"
channels = [
  {{ type = "console" }},
  {{ type = "dingtalk", webhook = "{ding.url}", secret_env = "TEST_DING_SECRET" }},
  {{ type = "feishu", webhook = "{fei.url}", secret_env = "TEST_FEISHU_SECRET" }},
]
""",
            encoding="utf-8",
        )
        env = NO_SECRETS | {"TEST_DING_SECRET": "SECding", "TEST_FEISHU_SECRET": "fei-secret"}
        daemon = Daemon(["--demo", "--config", str(config), "--for", "10"], env, cwd=tmp_path).wait_started()
        assert daemon.proc.wait(60) == 0, daemon.output()
        finished = time.time()
        ding_sent = [r for r in ding.received if r.path == ding.path]
        fei_sent = [r.json() for r in fei.received if r.path == fei.path]
        ding_stamps = [int(r.query["timestamp"]) / 1000 for r in ding_sent]
        fei_stamps = [int(body["timestamp"]) for body in fei_sent]
        # each signature checks out as the provider checks it (DingTalk 310000, Feishu 19021 otherwise)
        assert all(ding.signed(r.query) for r in ding_sent)
        assert all(fei.signed(body["timestamp"], body["sign"]) for body in fei_sent)
    assert ding_stamps and fei_stamps, daemon.output()
    for stamp in ding_stamps + fei_stamps:
        assert finished - 60 < stamp <= finished  # real time, not 2026-11-11 on the 3600× clock
    assert not ding.problems and not fei.problems
    last = [line for line in daemon.lines if line.strip()][-1]
    assert last.startswith("summary: 24h pickup rate "), daemon.output()  # [alerts] language = "en"
    assert "Sandbox SBX" in daemon.output()


def offline_demo(tmp_path: Path, language: str) -> str:
    config = tmp_path / f"{language}.toml"
    config.write_text(f'[alerts]\nlanguage = "{language}"\nchannels = [{{ type = "console" }}]\n', encoding="utf-8")
    settings = config_module.load(config, {})
    out = io.StringIO()
    asyncio.run(run_demo(settings, parcels=120, days=4, out=out))
    return out.getvalue()


@pytest.mark.parametrize(
    ("language", "carrier", "exception", "reason", "refund", "closing"),
    [
        ("zh", "模拟快递", "快递异常", "原因: ", "[仅退款] 订单 ", "汇总: 24小时揽收及时率 "),
        ("en", "Sandbox", "carrier exception", "reason: ", "[refund-only] order ", "summary: 24h pickup rate "),
    ],
)
def test_the_offline_demo_names_carriers_says_what_went_wrong_in_time_order(
    tmp_path: Path, language: str, carrier: str, exception: str, reason: str, refund: str, closing: str
) -> None:
    out = offline_demo(tmp_path, language)
    lines = timed_lines(out)
    assert lines
    assert [when for when, _ in lines] == sorted(when for when, _ in lines)
    assert f"{carrier} SBX" in out and " sandbox SBX" not in out
    problems = [text for _, text in lines if exception in text]
    assert problems, out
    for text in problems:  # the carrier's own words, phone numbers masked
        said = text.split(reason, 1)[1]
        assert len(said) >= 4 and not re.search(r"1\d{10}", said), text
    assert any(text.startswith(refund) for _, text in lines), out
    assert out.rstrip().splitlines()[-1].startswith(closing)


def test_carrier_names_come_from_the_adapters_labels() -> None:
    assert carrier_name("顺丰速运 SF Express", "zh") == "顺丰速运"
    assert carrier_name("中通快递 ZTO Express", "en") == "ZTO Express"
    assert carrier_name("快递100 Kuaidi100", "zh") == "快递100"
    assert carrier_name("Acme Parcels", "zh") == "Acme Parcels"  # a third-party label without Chinese
