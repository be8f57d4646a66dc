"""KPI rollup and retention: reports give the same answer before and after rollup and purge."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.kpi.reports import report_json
from monitor.kpi.rollup import counted_days, purge_finished, rollup_kpis
from monitor.store.kpi import open_kpi
from monitor.store.models import (
    Action,
    Activity,
    Anomaly,
    Intercept,
    KpiDaily,
    Notification,
    Parcel,
    Refund,
    Ticket,
    TrackingEventRow,
)
from monitor.store.store import Store
from tests.test_reports import CST, Shop, t

WINDOW = 45  # 2026-11-06 … 2026-12-20
FIRST_DAY = date(2026, 11, 6)
TODAY = date(2026, 12, 20)


def history(store: Store) -> Shop:
    """Five weeks of parcels: three finished long ago (F*), the rest recent or unfinished (K*)."""
    shop = Shop(store, t(10, 8))
    shop.ship("F1", t(11, 9), amount_fen=10_000)
    shop.scan("F1", t(11, 12), "picked_up")  # no update for 24 h: stalled, resolved on delivery
    shop.scan("F1", t(13, 10), "delivered")
    shop.ship("K2", t(15, 9))
    shop.scan("K2", t(15, 10), "picked_up")  # never heard of again: open anomalies
    shop.ship("K3", t(16, 9))
    shop.scan("K3", t(16, 10), "picked_up")
    shop.scan("K3", t(16, 20), "in_transit")
    shop.refund("K3", t(17, 8))
    shop.scan("K3", t(17, 18), "delivered")  # intercept_failed stays open
    shop.ship("F3", t(18, 9), order="O-PAIR", carrier="sf", shop="专营店")
    shop.ship("K5", t(18, 9), order="O-PAIR", carrier="sf", shop="专营店")
    shop.scan("F3", t(18, 10), "picked_up", carrier="sf")
    shop.scan("K5", t(18, 10), "picked_up", carrier="sf")
    shop.answer_later("K5", "sf")
    shop.refund("PAIR", t(18, 12), order="O-PAIR")  # F3 is intercepted at once, K5 waits for the carrier
    shop.scan("F3", t(18, 14), "returning", carrier="sf")
    shop.ship("F2", t(20, 9))
    shop.scan("F2", t(20, 12), "picked_up")
    shop.scan("F3", t(20, 18), "returned", carrier="sf")
    shop.refund("F2", t(21, 8))
    shop.scan("F2", t(21, 15), "returning")
    shop.scan("F2", t(24, 10), "returned")
    shop.ship("K1", t(14, 9, month=12))
    shop.scan("K1", t(14, 10, month=12), "picked_up")
    shop.scan("K1", t(15, 10, month=12), "delivered")  # finished, but too recent
    shop.at(t(20, 12, month=12))
    return shop


def figures(driver: Shop, **filters: Any) -> dict[str, Any]:
    data = report_json(driver.report(days=WINDOW, **filters))
    data["window"].pop("kpi_days")
    return data


def roll_up(shop: Shop, skip: tuple[date, ...] = ()) -> None:
    day = FIRST_DAY
    while day < TODAY:
        if day not in skip:
            rollup_kpis(shop.store, shop.clock, day, tz=CST)
        day += timedelta(days=1)


def ids(store: Store, *numbers: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(Parcel.tracking_no, Parcel.id).where(Parcel.tracking_no.in_(numbers))).all()
    return {no: pid for no, pid in rows}


def rows_of(store: Store, parcel_ids: list[int]) -> dict[str, int]:
    """Count the rows of every kind that refer to some parcels."""
    counts = {}
    with store.engine.connect() as conn:
        for name, model in (("events", TrackingEventRow), ("anomalies", Anomaly), ("actions", Action),
                            ("tickets", Ticket), ("intercepts", Intercept), ("activity", Activity),
                            ("parcels", Parcel)):  # fmt: skip
            column = model.id if model is Parcel else model.parcel_id
            counts[name] = conn.execute(select(func.count()).where(column.in_(parcel_ids))).scalar_one()
        counts["notifications"] = conn.execute(
            select(func.count())
            .select_from(Notification)
            .join(Anomaly, Anomaly.id == Notification.anomaly_id)
            .where(Anomaly.parcel_id.in_(parcel_ids))
        ).scalar_one()
    return counts


def refunds(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(Refund.refund_id)).scalars())


# -- purge -----------------------------------------------------------------------------------


def test_purge_keeps_report_figures_and_deletes_exactly_the_old_finished_parcels(store: Store) -> None:
    shop = history(store)
    before = figures(shop)
    by_shop = figures(shop, shop="专营店")
    everyone = ids(store, "F1", "F2", "F3", "K1", "K2", "K3", "K5")
    kept = [everyone[no] for no in ("K1", "K2", "K3", "K5")]
    kept_rows = rows_of(store, kept)
    assert before["pickup"]["total"]["due"] == 7 and before["intercepts"]["total"]["requested"] == 4
    doomed = [everyone[no] for no in ("F1", "F2", "F3")]
    doomed_rows = rows_of(store, doomed)
    assert doomed_rows["anomalies"] >= 1 and doomed_rows["tickets"] >= 1 and doomed_rows["notifications"] >= 1
    assert doomed_rows["intercepts"] == 2 and doomed_rows["events"] >= 5

    # No rollup ran (the daemon was down those nights): the purge rolls up the days it needs itself.
    result = purge_finished(store, shop.clock, 7, tz=CST)
    assert (result.parcels, result.kept_not_rolled_up) == (3, 0)
    assert {k: getattr(result, k) for k in doomed_rows} == doomed_rows
    assert rows_of(store, doomed) == dict.fromkeys(doomed_rows, 0)
    assert refunds(store) == {"R-K3", "R-PAIR"}  # K5 still belongs to order O-PAIR
    assert rows_of(store, kept) == kept_rows
    assert figures(shop) == before
    assert figures(shop, shop="专营店") == by_shop


def test_a_purged_day_is_never_rolled_up_again(store: Store) -> None:
    shop = history(store)
    before = figures(shop)
    roll_up(shop)
    purge_finished(store, shop.clock, 7, tz=CST)
    again = rollup_kpis(store, shop.clock, date(2026, 11, 11), tz=CST)  # F1 shipped and got stalled that day
    assert again.frozen == 1 and again.rows == 0
    assert figures(shop) == before


def test_purge_works_in_chunks(store: Store) -> None:
    shop = history(store)
    roll_up(shop)
    result = purge_finished(store, shop.clock, 7, tz=CST, chunk=1)
    assert (result.parcels, result.transactions) == (3, 3)


def test_zero_days_keeps_everything(store: Store) -> None:
    shop = history(store)
    roll_up(shop)
    assert purge_finished(store, shop.clock, 0, tz=CST).parcels == 0


def test_counted_days_follow_what_the_reports_count() -> None:
    class P:
        shipped_at = t(11, 23)  # the 11th in Beijing, the 11th in UTC too
        pickup_deadline = t(12, 23)
        held = False
        delivered_at = t(14, 7)  # 23:00 UTC on the 13th: the 14th in Beijing

    assert counted_days(P, [t(13, 1)], CST) == {date(2026, 11, 11), date(2026, 11, 12), date(2026, 11, 13),
                                                date(2026, 11, 14)}  # fmt: skip
    P.held = True
    assert date(2026, 11, 12) not in counted_days(P, [], CST)


# -- rollup ----------------------------------------------------------------------------------


def kpi_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(KpiDaily).order_by(KpiDaily.day, KpiDaily.shop))]


def test_rollup_is_idempotent(store: Store) -> None:
    shop = history(store)
    day = date(2026, 11, 18)
    first = rollup_kpis(store, shop.clock, day, tz=CST)
    rows = kpi_rows(store)
    assert first.rows == len(rows) >= 1
    again = rollup_kpis(store, shop.clock, day, tz=CST)
    assert (again.rows, kpi_rows(store)) == (first.rows, rows)
    with open_kpi(store) as kpi:
        slices = {(s.shop, s.carrier): s for _, s in kpi.daily(day, day)}
    pair = slices[("专营店", "sf")]  # F3 and K5 shipped, both intercepted, F3 back on its way
    assert (pair.shipped, pair.intercepts_requested, pair.intercepts_succeeded) == (2, 2, 1)


def test_rerunning_a_day_replaces_its_row(store: Store) -> None:
    shop = history(store)
    day = date(2026, 11, 17)  # K3's intercept_failed opened that day
    rollup_kpis(store, shop.clock, day, tz=CST)
    with open_kpi(store) as kpi:
        ((_, row),) = kpi.daily(day, day)
    assert row.anomalies["intercept_failed"]["open"] == 1
    with store.begin() as uow:
        (failed,) = uow.anomalies(state="open", rule="intercept_failed")
    shop.at(t(20, 13, month=12))
    assert shop.monitor.acknowledge(failed.id)
    rollup_kpis(store, shop.clock, day, tz=CST)
    with open_kpi(store) as kpi:
        ((_, row),) = kpi.daily(day, day)
    assert (row.anomalies["intercept_failed"]["open"], row.anomalies["intercept_failed"]["acknowledged"]) == (0, 1)


def test_rollup_refuses_a_day_that_has_not_ended(store: Store) -> None:
    shop = Shop(store, t(14, 12))
    with pytest.raises(ValueError, match="has not ended"):
        rollup_kpis(store, shop.clock, date(2026, 11, 14), tz=CST)
    rollup_kpis(store, shop.clock, date(2026, 11, 13), tz=CST)


def test_reports_read_only_purged_days_from_kpi_daily(store: Store) -> None:
    shop = history(store)
    before = figures(shop)
    by_carrier = figures(shop, carrier="sf")
    roll_up(shop)
    assert shop.report(days=WINDOW).kpi_days == 0  # rolled up, nothing purged: still read live
    purge_finished(store, shop.clock, 7, CST)
    assert shop.report(days=WINDOW).kpi_days == 7  # F1: 11th–13th, F3: 18th–19th, F2: 20th–21st
    assert figures(shop) == before
    assert figures(shop, carrier="sf") == by_carrier


def test_what_changed_since_the_rollup_survives_the_purge(store: Store) -> None:
    shop = history(store)
    roll_up(shop)  # the nightly rollup, a day before the purge
    shop.verdict("K5", t(21, 9, month=12), accepted=True, carrier="sf")  # requested on the 18th, with F3
    before = figures(shop)
    assert before["intercepts"]["total"]["latency_seconds"]["max"] == (t(21, 9, month=12) - t(18, 12)).total_seconds()
    assert purge_finished(store, shop.clock, 7, CST).parcels == 3
    assert figures(shop) == before
