"""`parcel-monitor import SHIPMENTS.csv` as a merchant runs it, on SQLite and PostgreSQL.

The fixtures are ERP exports: ``example.csv`` (UTF-8 with a BOM, CRLF, quoted fields) and
``example-gbk.csv`` (GBK, columns in another order, an extra ``remark`` column).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from monitor.cli import main
from monitor.intake import importing
from monitor.store.models import Parcel
from monitor.store.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "shipments"
EXAMPLE = FIXTURES / "example.csv"
EXAMPLE_GBK = FIXTURES / "example-gbk.csv"
HEADER = "order_id,carrier,tracking_no,shipped_at,shop,amount\n"


@pytest.fixture
def config(database_url: str, store: Store, tmp_path: Path) -> Path:
    """Write a settings file pointing at the (migrated) test database, with two carriers."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n\n[carriers.sf]\npartner_id = "demo"\n\n'
        '[carriers.kuaidi100]\ncompany = "zhongtong"\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> Result:
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    return CliRunner().invoke(main, ["import", "--config", str(config), *args], env=env)


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Parcel)).scalar_one()


def parcel(store: Store, order_id: str) -> Any:
    with store.begin() as uow:
        (row,) = uow.parcels_of_order(order_id)
        return row


def test_example_file_is_imported(config: Path, store: Store) -> None:
    result = run(config, str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{EXAMPLE}: read 10, created 10, already known 0, bad 0\n"
    assert count(store) == 10
    first = parcel(store, "TB20261111000001")
    assert (first.carrier, first.tracking_no, first.shop) == ("sf", "SF1400000000011", "旗舰店")
    assert first.shipped_at == datetime(2026, 11, 11, 1, 5, tzinfo=UTC)
    assert first.pickup_deadline == datetime(2026, 11, 12, 1, 5, tzinfo=UTC)
    assert first.promised_delivery == datetime(2026, 11, 13, 15, 59, 59, tzinfo=UTC)
    assert (first.origin_province, first.destination_province, first.amount_fen) == ("浙江", "上海", 19_900)
    presale = parcel(store, "TB20261111000006")
    assert presale.presale and presale.pickup_deadline == datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    quoted = parcel(store, "TB20261111000010")
    assert quoted.shop == "旗舰店, 海外"
    assert parcel(store, "TB20261111000005").amount_fen is None
    assert {p.tracking_no for p in _all_of(store, "TB20261111000007")} == {"SF1400000000077", "SF1400000000088"}


def _all_of(store: Store, order_id: str) -> list[Any]:
    with store.begin() as uow:
        return uow.parcels_of_order(order_id)


def test_importing_the_same_file_again_creates_nothing(config: Path, store: Store) -> None:
    run(config, str(EXAMPLE))
    again = run(config, str(EXAMPLE), "--batch-size", "3")
    assert again.exit_code == 0, again.output
    assert again.stdout == f"{EXAMPLE}: read 10, created 0, already known 10, bad 0 (nothing new)\n"
    assert count(store) == 10


def test_small_batches_store_every_row(config: Path, store: Store) -> None:
    result = run(config, str(EXAMPLE), "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert count(store) == 10


def test_bad_rows_are_reported_and_good_rows_stored(config: Path, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "shipments.csv"
    path.write_text(
        HEADER
        + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n"  # line 2
        + "A2,sf,SF2,2026/11/11,旗舰店,10\n"  # line 3
        + "A3,yto,YT3,2026-11-11T09:00:00+08:00,旗舰店,\n"  # line 4
        + "A4,sf,SF4,2026-11-11T09:00:00,旗舰店,\n"  # line 5
        + ",sf,SF5,2026-11-11T09:00:00+08:00,旗舰店,\n"  # line 6
        + "\n"  # line 7: blank, skipped
        + "A8,sf,SF8,2026-11-11T09:00:00+08:00,旗舰店,十元\n"  # line 8
        + '"A9",sf,SF9,2026-11-11T09:00:00+08:00,"多行\n店名",1\n'  # lines 9-10
        + "A11,kuaidi100,ZT11,2026-11-11T09:00:00+08:00,旗舰店,1,extra\n",  # line 11
        encoding="utf-8",
    )
    result = run(config, str(path))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert errors == [
        f"{path}:3: shipped_at: not an ISO 8601 time: '2026/11/11'",
        f"{path}:4: carrier: not a configured carrier (configured: kuaidi100, sf), got 'yto'",
        f"{path}:5: shipped_at: time without an offset: '2026-11-11T09:00:00' (write e.g. +08:00)",
        f"{path}:6: order_id: required text, got ''",
        f"{path}:8: amount: expected a number of yuan, got '十元'",
        f"{path}:11: expected 6 fields as in the header, got 7: 'extra'",
    ]
    assert result.stdout == f"{path}: read 8, created 2, already known 0, bad 6\n"
    with store.begin() as uow:
        stored = uow.parcels_by_keys([("sf", "SF1"), ("sf", "SF9"), ("sf", "SF2")])
    assert set(stored) == {("sf", "SF1"), ("sf", "SF9")}
    assert count(store) == 2


def test_missing_required_column_stores_nothing(config: Path, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "no-time.csv"
    path.write_text("order_id,carrier,tracking_no,shop\nA1,sf,SF1,旗舰店\n", encoding="utf-8")
    result = run(config, str(path))
    assert result.exit_code == 2
    assert f"error: {path}: missing required column 'shipped_at'" in result.stderr
    assert count(store) == 0


def test_gbk_file_is_detected(config: Path, store: Store) -> None:
    result = run(config, str(EXAMPLE_GBK))
    assert result.exit_code == 0, result.output
    assert "reading it as GBK" in result.stderr
    assert result.stderr.count("unknown column(s) ignored: remark") == 1
    assert result.stdout == f"{EXAMPLE_GBK}: read 5, created 5, already known 0, bad 0\n"
    row = parcel(store, "JD20261112000003")
    assert (row.shop, row.destination_province, row.amount_fen) == ("京东自营旗舰店", "西藏", 88_000)


def test_gbk_file_with_chosen_encoding(config: Path, store: Store) -> None:
    result = run(config, str(EXAMPLE_GBK), "--encoding", "gbk")
    assert result.exit_code == 0, result.output
    assert "reading it as GBK" not in result.stderr
    assert parcel(store, "JD20261112000001").shop == "京东自营旗舰店"


def test_gbk_file_read_as_utf8_cannot_be_read(config: Path, store: Store) -> None:
    result = run(config, str(EXAMPLE_GBK), "--encoding", "utf-8")
    assert result.exit_code == 2
    assert f"error: {EXAMPLE_GBK}: not valid utf-8 text" in result.stderr
    assert count(store) == 0


def test_progress_goes_to_stderr(config: Path) -> None:
    result = run(config, str(EXAMPLE))
    assert f"importing {EXAMPLE}" in result.stderr
    assert "importing" not in result.stdout


def test_dry_run_stores_nothing(config: Path, store: Store) -> None:
    run(config, str(EXAMPLE_GBK))
    result = run(config, str(EXAMPLE), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{EXAMPLE}: read 10, would create 10, already known 0, bad 0 (dry run: nothing stored)\n"
    assert count(store) == 5


def test_missing_file_cannot_be_read(config: Path, tmp_path: Path) -> None:
    result = run(config, str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "cannot open" in result.stderr


# -- reading the file (no database) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("\ufeff" + HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,1\n", "utf-8"),
        (HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,1\n", "utf-8"),
        (HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,1\n", "gbk"),
        (HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,shop,1\n", "ascii"),
    ],
)
def test_encoding_is_detected(tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode(encoding))
    checked = importing.check(path)
    assert checked.encoding == ("gb18030" if encoding == "gbk" else "utf-8-sig")
    assert checked.columns == ("order_id", "carrier", "tracking_no", "shipped_at", "shop", "amount")
    ((line, row),) = importing.rows(checked)
    assert line == 2 and row["shop"] in ("旗舰店", "shop")


def test_broken_utf8_is_not_mistaken_for_gbk(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes((HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,1\n").encode() + b"A2,sf,\xff\n")
    with pytest.raises(importing.UnreadableFile, match="not valid UTF-8 at byte"):
        importing.check(path)


def test_empty_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"")
    with pytest.raises(importing.UnreadableFile, match="no header row"):
        importing.check(path)


# -- nothing is guessed ------------------------------------------------------------------------

PRESALE_HEADER = "order_id,carrier,tracking_no,shipped_at,presale\n"


@pytest.mark.parametrize(
    ("cell", "presale"),
    [("true", True), ("TRUE", True), ("1", True), ("是", True), ("Y", True), ("y", True),
     ("false", False), ("0", False), ("否", False), ("N", False), ("", False)],
)  # fmt: skip
def test_presale_accepts_the_documented_words(config: Path, store: Store, tmp_path: Path, cell: str,
                                              presale: bool) -> None:  # fmt: skip
    path = tmp_path / "presale.csv"
    path.write_text(PRESALE_HEADER + f"P1,sf,SFP1,2026-11-11T09:00:00+08:00,{cell}\n", encoding="utf-8")
    result = run(config, str(path))
    assert result.exit_code == 0, result.output
    row = parcel(store, "P1")
    assert row.presale is presale
    hours = 72 if presale else 24
    assert row.pickup_deadline == datetime(2026, 11, 11, 1, 0, tzinfo=UTC) + timedelta(hours=hours)


@pytest.mark.parametrize("cell", ["maybe", "T", "2", "真", "yes please"])
def test_presale_refuses_anything_else(config: Path, store: Store, tmp_path: Path, cell: str) -> None:
    path = tmp_path / "presale.csv"
    path.write_text(PRESALE_HEADER + f"P1,sf,SFP1,2026-11-11T09:00:00+08:00,{cell}\n", encoding="utf-8")
    result = run(config, str(path))
    assert result.exit_code == 1
    assert f"{path}:2: presale: expected true/false, 1/0, 是/否 or Y/N, got {cell!r}" in result.stderr
    assert count(store) == 0


def test_a_number_under_another_order_is_reported_not_known(config: Path, store: Store, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n", encoding="utf-8")
    assert run(config, str(first)).exit_code == 0
    second = tmp_path / "second.csv"
    second.write_text(
        HEADER
        + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n"  # line 2: same order: already known
        + "B1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n"  # line 3: another order: reported
        + "C1,sf,SF7,2026-11-11T09:00:00+08:00,旗舰店,10\n"  # line 4: new
        + "D1,sf,SF7,2026-11-11T09:00:00+08:00,旗舰店,10\n",  # line 5: same number as line 4, another order
        encoding="utf-8",
    )
    result = run(config, str(second), "--batch-size", "2")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(second))]
    assert errors == [
        f"{second}:3: tracking_no: 'SF1' is already watched under order 'A1', not 'B1'",
        f"{second}:5: tracking_no: 'SF7' is on line 4 under order 'C1', not 'D1'",
    ]
    assert result.stdout == f"{second}: read 4, created 1, already known 1, bad 2\n"
    assert parcel(store, "A1").tracking_no == "SF1" and parcel(store, "C1").tracking_no == "SF7"


def test_a_number_twice_in_one_batch_under_two_orders(config: Path, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text(
        HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n" + "B1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,10\n",
        encoding="utf-8",
    )
    result = run(config, str(path), "--dry-run")
    assert result.exit_code == 1
    assert f"{path}:3: tracking_no: 'SF1' is on line 2 under order 'A1', not 'B1'" in result.stderr
    assert count(store) == 0


def test_short_rows_are_refused_like_long_ones(config: Path, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(HEADER + "A1,sf,SF1,2026-11-11T09:00:00+08:00\n", encoding="utf-8")
    result = run(config, str(path))
    assert result.exit_code == 1
    assert f"{path}:2: expected 6 fields as in the header, got 4 (no shop, amount)" in result.stderr
    assert count(store) == 0


def test_amounts_and_years_no_column_can_hold_are_bad_rows(config: Path, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bounds.csv"
    path.write_text(
        HEADER
        + "A1,sf,SF1,2026-11-11T09:00:00+08:00,旗舰店,1e308\n"
        + "A2,sf,SF2,2026-11-11T09:00:00+08:00,旗舰店,21474836.48\n"
        + "A3,sf,SF3,0001-01-01T00:00:00+08:00,旗舰店,1\n"
        + "A4,sf,SF4,2026-11-11T09:00:00+08:00,旗舰店,21474836.47\n",
        encoding="utf-8",
    )
    result = run(config, str(path))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert errors == [
        f"{path}:2: amount: expected a number of yuan from 0 to 21474836.47, got '1e308'",
        f"{path}:3: amount: expected a number of yuan from 0 to 21474836.47, got '21474836.48'",
        f"{path}:4: shipped_at: expected a year from 2000 to 2100, got '0001-01-01T00:00:00+08:00'",
    ]
    assert parcel(store, "A4").amount_fen == 2_147_483_647
