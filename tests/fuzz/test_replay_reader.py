"""The replay reader (monitor/replay/scenario.py): any file is steps or a ScenarioError naming its line."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from monitor.errors import ScenarioError
from monitor.replay.scenario import Step, parse
from tests.fuzz.harness import FUZZ
from tests.fuzz.payloads import hostile_bodies, json_values, mostly, objects, text_fields

CST = timezone(timedelta(hours=8))

#: ISO 8601 times as a scenario writes them, with an offset; and the ones that are not.
iso_times = mostly(
    st.datetimes(timezones=st.sampled_from([UTC, CST, timezone(timedelta(hours=-5))])).map(lambda d: d.isoformat()),
    st.one_of(
        st.sampled_from(["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00", "2026-11-11T09:00:00", "soon"]),
        json_values,
    ),
)
amounts = mostly(
    st.one_of(st.decimals(0, 100_000, places=2).map(str), st.integers(0, 10_000)),
    st.one_of(st.sampled_from(["1e999999999", "NaN", "-1", "inf"]), st.just(1e308), json_values),
)
common = {"at": iso_times}
lines = st.one_of(
    objects(common | {"kind": st.just("shipment"), "order_id": text_fields, "carrier": st.just("sandbox"),
                      "tracking_no": text_fields, "shipped_at": iso_times, "amount": amounts,
                      "presale": mostly(st.booleans(), json_values), "destination_province": text_fields}),
    objects(common | {"kind": st.just("tracking"), "carrier": st.just("sandbox"), "tracking_no": text_fields,
                      "status": mostly(st.sampled_from(["picked_up", "in_transit", "delivered", "exception"]),
                                       text_fields),
                      "reason": mostly(st.sampled_from(["", "lost", "address"]), json_values), "time": iso_times}),
    objects(common | {"kind": st.just("refund"), "order_id": text_fields, "refund_id": text_fields,
                      "type": mostly(st.sampled_from(["refund_only", "return_and_refund"]), json_values)}),
    objects(common | {"kind": st.just("intercept_result"), "carrier": text_fields, "tracking_no": text_fields,
                      "accepted": mostly(st.booleans(), json_values)}),
    objects(common | {"kind": mostly(st.just("end"), json_values)}),
).map(lambda obj: json.dumps(obj, ensure_ascii=False))  # fmt: skip


def read(lines: list[str] | list[bytes]) -> list[Step] | ScenarioError:
    """Parse a scenario; a ScenarioError must name a line of it."""
    try:
        steps = parse(lines)
    except ScenarioError as err:
        assert 1 <= err.line <= max(len(lines), 1), err
        assert str(err).startswith(f"line {err.line}: ")
        event("ScenarioError")
        return err
    event(f"{len(steps)} steps")
    return steps


@FUZZ
@given(scenario=st.lists(mostly(lines, st.text(max_size=40)), max_size=6))
@example(scenario=['{"kind": "end", "at": "0001-01-01T00:00:00+08:00"}'])  # OverflowError before the fix
@example(scenario=['{"kind": "shipment", "at": "2026-11-11T09:00:00+08:00", "order_id": "O1", "carrier": "sandbox", '
                   '"tracking_no": "SB1", "amount": 1e308}'])  # fmt: skip
@example(scenario=['{"kind": ["end"], "at": "2026-11-11T09:00:00+08:00"}'])  # TypeError (unhashable) before the fix
@example(scenario=["1" * 5000])  # ValueError (more than 4,300 digits) before the fix
@example(scenario=["[" * 100_000])  # RecursionError before the fix
def test_any_scenario_text_is_steps_or_a_scenario_error(scenario: list[str]) -> None:
    read(scenario)


@FUZZ
@given(scenario=st.lists(hostile_bodies, max_size=4))
@example(scenario=[b'{"kind": "end", "at": "2026-11-11T09:00:00+08:00"}', b"\xff\xfe"])
def test_any_scenario_bytes_are_steps_or_a_scenario_error(scenario: list[bytes]) -> None:
    read(scenario)


def test_a_text_file_that_is_not_utf8_is_a_scenario_error(tmp_path: Any) -> None:
    path = tmp_path / "scenario.jsonl"
    path.write_bytes(b'{"kind": "end", "at": "2026-11-11T09:00:00+08:00"}\n\xff\xfe\n')
    with path.open(encoding="utf-8") as lines:  # as the CLI opens it: decoded lazily, in blocks
        try:
            parse(lines)
        except ScenarioError as err:
            assert "UTF-8" in str(err) and err.line >= 1
        else:
            raise AssertionError("a file with bytes that are not UTF-8 was read")
