"""SF's fine print: ``checkPhoneNo`` on route queries, ``newDestAddress`` for intercepts, and the wall clock.

Against the kit's FakeSF, which checks the form and the digest over the exact msgData sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from carriers.sf.settings import SFSettings
from carriers.testing.clock import FixedClock
from carriers.testing.sf import CHECK_WORD, PARTNER, RETURN_ADDRESS, RETURN_ADDRESS_TOML
from monitor.cli import main
from tests.carriers.payloads import FakeSF
from tests.carriers.sf.test_sf_fetch import NUMBERS, PARCEL, adapter, track

ENV = {"SF_CHECK_WORD": CHECK_WORD}


@pytest.fixture
def sf() -> Iterator[FakeSF]:
    with FakeSF() as server:
        yield server


def test_route_queries_carry_the_last_four_digits_of_the_shop_phone_per_number(sf: FakeSF) -> None:
    results = track(adapter(sf.url, sender_phone="0571-88886666"), NUMBERS)
    assert [r.problem for r in results] == [None, None]  # SF (the fake) accepted the signed form
    (request,) = sf.seen
    assert request.msg()["checkPhoneNo"] == "6666,6666"
    assert request.msg()["trackingNumber"] == NUMBERS


def test_without_a_sender_phone_no_check_phone_is_sent(sf: FakeSF) -> None:
    track(adapter(sf.url), NUMBERS)
    (request,) = sf.seen
    assert "checkPhoneNo" not in request.msg()


def test_the_sender_phone_is_validated_and_never_shown() -> None:
    base = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD", "return_address": RETURN_ADDRESS}
    settings = SFSettings.from_mapping(base | {"sender_phone": "13800138000"}, ENV)
    assert settings.check_phone_no == "8000" and "8000" not in repr(settings)
    with pytest.raises(ValueError, match=r"^sender_phone: "):
        SFSettings.from_mapping(base | {"sender_phone": "ext. 12"}, ENV)


def test_an_account_that_intercepts_needs_a_return_address() -> None:
    base = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD"}
    with pytest.raises(ValueError, match=r"^return_address: required while intercept is on"):
        SFSettings.from_mapping(base, ENV)
    assert SFSettings.from_mapping(base | {"intercept": False}, ENV).intercept is False
    with pytest.raises(ValueError, match=r"^intercept: expected true or false"):
        SFSettings.from_mapping(base | {"intercept": "yes", "return_address": RETURN_ADDRESS}, ENV)


def test_with_intercept_off_nothing_is_sent_and_the_answer_says_why(sf: FakeSF) -> None:
    carrier = adapter(sf.url, intercept=False, return_address=None)
    answer = asyncio.run(carrier.intercept(PARCEL, "refund_only", "refund-1"))
    assert answer.accepted is False and "carriers.sf.intercept" in answer.reason
    assert sf.seen == []


def sf_config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "sf.toml"
    path.write_text(f'[carriers.sf]\npartner_id = "{PARTNER}"\ncheck_word_env = "SF_CHECK_WORD"\n{extra}',
                    encoding="utf-8")  # fmt: skip
    return path


def test_check_config_refuses_an_intercepting_sf_account_without_a_return_address(tmp_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(main, ["check-config", "--config", str(sf_config(tmp_path, ""))], env=ENV)
    assert refused.exit_code == 2
    assert "carriers.sf: return_address: required while intercept is on" in refused.output
    fine = runner.invoke(main, ["check-config", "--config", str(sf_config(tmp_path, RETURN_ADDRESS_TOML))], env=ENV)
    assert fine.exit_code == 0, fine.output
    off = runner.invoke(main, ["check-config", "--config", str(sf_config(tmp_path, "intercept = false\n"))], env=ENV)
    assert off.exit_code == 0, off.output


def test_request_timestamps_come_from_the_wall_clock_in_the_context(sf: FakeSF) -> None:
    import httpx

    from carriers.sf import INFO

    business, wall = FixedClock(datetime(2026, 11, 11, tzinfo=UTC)), FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
    settings = {"partner_id": PARTNER, "check_word_env": "SF_CHECK_WORD", "base_url": sf.url,
                "return_address": RETURN_ADDRESS}  # fmt: skip
    context = {"clock": business, "wall": wall, "http": httpx.AsyncClient(), "environ": ENV}
    track(INFO.factory(settings, context), NUMBERS[:1])  # type: ignore[arg-type]
    (request,) = sf.seen
    assert request.form["timestamp"] == str(int(wall.now().timestamp() * 1000))
