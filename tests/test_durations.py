"""Durations: exact percentiles while few values, a mergeable log histogram (within 2 %) past that."""

from __future__ import annotations

import json
import random

import pytest

from monitor.kpi.reports import percentile
from monitor.store.durations import EXACT, GAMMA, Durations, bucket_edges, bucket_of

PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


def close_enough(got: float | None, want: float | None) -> bool:
    """Within one bucket: 2 % of the exact value, or 1 ms near zero."""
    assert got is not None and want is not None
    return abs(got - want) <= max(abs(want) * (GAMMA - 1), 0.001) + 1e-9


def test_few_values_are_kept_exactly() -> None:
    rng = random.Random(1)
    for n in (1, 2, 3, 10, EXACT):
        values = [round(rng.uniform(0, 90_000), 3) for _ in range(n)]
        d = Durations(values)
        assert d.exact == tuple(sorted(values)) and len(d) == n
        for pct in (*PCTS, 7, 33):
            assert d.percentile(pct) == percentile(values, pct), (n, pct)
    assert Durations().percentile(50) is None and not Durations() and Durations().exact == ()


def test_many_values_give_percentiles_within_a_bucket() -> None:
    rng = random.Random(2)
    for n in (EXACT + 1, 500, 20_000):
        values = [round(rng.lognormvariate(8, 1.5), 3) for _ in range(n)]
        d = Durations(values)
        assert d.exact is None and len(d) == n
        assert (d.min, d.max) == (min(values), max(values))
        assert d.percentile(100) == max(values)
        for pct in (*PCTS, 0.1, 7, 33, 99.9):
            assert close_enough(d.percentile(pct), percentile(values, pct)), (n, pct)


def test_zero_and_negative_values() -> None:
    values = [0.0] * 50 + [-5.0] * 10 + [0.0004] * 5 + [3.0] * 40
    d = Durations(values)
    assert d.exact is None
    for pct in PCTS:
        assert close_enough(d.percentile(pct), percentile(values, pct)), pct
    assert d.percentile(1) == -5.0 and d.percentile(50) == 0.0
    for v in (-7.3, -0.002, 0.0, 0.0009, 0.001, 0.00101, 1.0, 86_400.0):
        lower, upper = bucket_edges(bucket_of(v))
        assert lower <= v <= upper, v


def test_merging_parts_equals_counting_the_whole() -> None:
    rng = random.Random(3)
    parts = [[round(rng.uniform(1, 86_400), 3) for _ in range(rng.randrange(0, 90))] for _ in range(40)]
    whole = Durations(v for p in parts for v in p)
    merged = Durations()
    for p in parts:
        merged.merge(Durations(p))
    assert merged == whole and len(merged) == sum(map(len, parts))
    backwards = Durations()
    for p in reversed(parts):
        backwards.merge(Durations(p))
    assert backwards == whole
    for pct in PCTS:
        assert merged.percentile(pct) == whole.percentile(pct)


def test_a_merge_shares_nothing_with_what_it_merged() -> None:
    big = Durations(float(v) for v in range(1, 200))
    small = Durations([5.0, 6.0])
    mine = Durations()
    mine.merge(big)
    mine.merge(small)
    mine.add(7.0)
    assert len(big) == 199 and len(small) == 2 and big == Durations(float(v) for v in range(1, 200))
    copy = small.copy()
    copy.add(1.0)
    assert small.exact == (5.0, 6.0)


def test_small_merges_stay_exact_until_the_limit() -> None:
    a, b = Durations([1.0] * (EXACT // 2)), Durations([2.0] * (EXACT // 2))
    a.merge(b)
    assert a.exact == (1.0,) * (EXACT // 2) + (2.0,) * (EXACT // 2)
    a.merge(Durations([3.0]))
    assert a.exact is None and len(a) == EXACT + 1


def test_json_round_trip_and_old_lists() -> None:
    rng = random.Random(4)
    values = [round(rng.uniform(600, 86_400), 3) for _ in range(300)]
    d = Durations(values)
    stored = json.loads(json.dumps(d.to_json()))
    assert isinstance(stored, dict) and stored["n"] == 300
    assert Durations.from_json(stored) == d
    assert Durations.from_json(values) == d  # a row written before the histogram: every value
    assert Durations.from_json([3.0, 1.0]).to_json() == [1.0, 3.0]
    assert len(json.dumps(d.to_json())) < len(json.dumps(values))
    assert stored["width"] == 1 and (stored["min"], stored["max"]) == (min(values), max(values))
    crowded = Durations([5.0] * 70_000 + [9.0])  # a bucket past 65,535: 4-byte counts
    stored = crowded.to_json()
    assert isinstance(stored, dict) and stored["width"] == 4 and Durations.from_json(stored) == crowded
    assert close_enough(Durations.from_json(stored).percentile(50), 5.0)


@pytest.mark.parametrize(
    ("data", "field"),
    [("nope", "durations"), ({"n": 1, "gamma": 1.1, "buckets": [], "counts": []}, "durations.gamma"),
     ({"n": 2, "min": 1, "max": 1, "gamma": GAMMA, "lo": 5, "counts": "AQ=="}, "durations.width"),
     ({"n": 2, "min": 1, "max": 1, "gamma": GAMMA, "lo": 5, "width": 1, "counts": "AQ=="}, "durations: counts add up"),
     ({"n": 2, "min": 1, "max": 1, "gamma": GAMMA, "lo": 5, "width": 2, "counts": "not base64!"}, "durations.counts")],
)  # fmt: skip
def test_bad_stored_figures_are_refused_by_name(data: object, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        Durations.from_json(data)
