"""Hypothesis strategies for hostile carrier answers: arbitrary JSON, arbitrary bytes, and near misses.

Purely random JSON rarely gets past a parser's first check, so most strategies build the carrier's
documented shape with every leaf drawn from :data:`leaves` (wrong types, huge numbers, odd text,
times of year 1 and 9999...), which is where mapping bugs hide.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st


def mostly(valid: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value nine times in ten: answers that get past the first check find the deep bugs."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda ok: valid if ok else wrong)


#: Scalars a hostile or broken carrier could put anywhere.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "0", "3", "301", "A1000", "²", "١٢", "\x00", "\ud800", "null", "NaN", "1e999"]),
)
#: Any JSON document (and a few things JSON cannot hold, like NaN), a few levels deep.
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip

#: Times as carriers write them, in range and out of it.
local_times = mostly(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.one_of(
        st.builds(
            "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format,
            st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
            st.integers(0, 61),
        ),
        st.sampled_from(["0001-01-01 00:00:00", "9999-12-31 23:59:59", "2026-02-30 00:00:00", "2026-11-11T09:30:00"]),
        st.text(max_size=25),
    ),
)  # fmt: skip
#: Epoch milliseconds, as ZTO sends them: in range and far out of it.
epoch_millis = st.one_of(st.integers(), st.integers(min_value=10**20, max_value=10**400), st.just(-(10**18)))


#: What a carrier might put in a field meant for a time.
time_fields = mostly(local_times, st.one_of(epoch_millis, epoch_millis.map(str), json_values))
#: What a carrier might put in a field meant for a code or a text.
text_fields = mostly(
    st.one_of(st.text(max_size=20), st.sampled_from(["0", "1", "3", "50", "80", "301", "签收"])), json_values
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field missing one time in ten (``...`` marks a key to leave out)."""
    return mostly(value, st.just(...))


@st.composite
def objects(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Build an object of the given fields, each perhaps missing, perhaps with an extra key."""
    built = {key: draw(maybe(value)) for key, value in fields.items()}
    obj = {key: value for key, value in built.items() if value is not ...}
    if draw(st.sampled_from([False] * 9 + [True])):
        obj[draw(st.text(max_size=8))] = draw(json_values)
    return obj


def dumps(value: Any) -> str:
    """Write JSON as a careless server would: NaN and Infinity included, non-ASCII as is."""
    return json.dumps(value, ensure_ascii=False)


#: Bodies that are not JSON at all, or JSON no decoder should be asked to take.
hostile_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 200_000).map(lambda n: b"[" * n),
    st.integers(1, 50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(4_000, 6_000).map(lambda n: b"1" * n),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"<html>502 Bad Gateway</html>", b"NaN", b"\xff\xfe\x00"]),
    json_values.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
)
