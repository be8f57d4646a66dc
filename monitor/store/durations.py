"""Durations: a mergeable record of many seconds (ticket times to close, intercept latencies) for their percentiles.

The daily rollup used to keep every value (``kpi_daily`` held ~350,000 times to close over 30
days at 200,000 parcels, 3.5 MB of JSON), and the KPI page parsed and sorted them all on every
cold view. A :class:`Durations` keeps the values themselves while there are at most
:data:`EXACT` of them — so a quiet shop's figures, and every test's, stay exact nearest-rank
percentiles — and past that a sparse histogram of log-spaced buckets :data:`GAMMA` wide
(bucket → count), plus the exact count, minimum and maximum. Histograms add up bucket by
bucket, so a day's, a shop's or a month's percentiles come from merged cells without the
values; a percentile read from one lies in the same bucket as the exact nearest-rank value,
so it is off by less than 2 % of it (less than 1 ms near zero), and the minimum and maximum
stay exact.

Stored as JSON: a list of seconds when exact (the rollup's old format, so rows written before
still read), else ``{"n", "min", "max", "gamma", "lo", "width", "counts"}``: ``counts`` is the
count of every bucket from ``lo`` up, ``width`` bytes each (1, 2 or 4, the least that holds the
largest), little-endian, base64. Not a JSON list on purpose: the KPI page reads 30 days × shops
× carriers × rules of them per cold view, and parsing ~350,000 numbers was most of its time;
one string per histogram decodes in C. An old row's long list is turned into a histogram when
read.

In memory a histogram is one Python ``int`` holding every bucket's count in a 32-bit field
(bucket ``lo`` in the lowest bits), so adding two histograms is one shift and one integer
addition, not a loop over buckets. A field would overflow past 4,294,967,295 values in one
bucket, far beyond any shop's tickets.
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

#: At most this many values are kept as they are; past it, the histogram.
EXACT = 64
#: Each bucket's upper edge over its lower one: 2 % wide.
GAMMA = 1.02
#: Seconds below this (in size) share bucket 0; the values are rounded to milliseconds anyway.
FLOOR = 0.001
_LOG_GAMMA = math.log(GAMMA)
#: Bits per bucket in the in-memory int.
_FIELD = 32
#: array typecodes by item size (bytes), for decoding a histogram's counts.
_TYPECODES = {array(code).itemsize: code for code in ("L", "I", "H", "B")}


def bucket_of(seconds: float) -> int:
    """Return the bucket of a value: 0 below :data:`FLOOR` in size, ±(1 + ⌊log_γ(|v| / FLOOR)⌋) beyond.

    The logarithm is corrected against :func:`bucket_edges`, so a value on an edge lands where
    the edges say (folding sorted values by their edges must count the same).
    """
    size = abs(seconds)
    if size < FLOOR:
        return 0
    k = 1 + int(math.log(size / FLOOR) / _LOG_GAMMA)
    if size < FLOOR * GAMMA ** (k - 1):
        k -= 1
    elif size >= FLOOR * GAMMA**k:
        k += 1
    return k if seconds > 0 else -k


def bucket_edges(k: int) -> tuple[float, float]:
    """Return the lower and upper edges of bucket ``k`` (values ``lower <= v < upper`` for k > 0)."""
    if k == 0:
        return -FLOOR, FLOOR
    lower, upper = FLOOR * GAMMA ** (abs(k) - 1), FLOOR * GAMMA ** abs(k)
    return (lower, upper) if k > 0 else (-upper, -lower)


class Durations:
    """A multiset of seconds that merges: the values while few (≤ :data:`EXACT`), a log histogram past that."""

    __slots__ = ("_cumulative", "_hist", "_lo", "_max", "_min", "_n", "_packed", "_values")

    def __init__(self, values: Iterable[float] = ()) -> None:
        #: Values not yet in the histogram: all of them while exact, else a buffer folded in when read.
        self._values: list[float] = [float(v) for v in values]
        #: Bucket counts, _FIELD bits each from bucket ``_lo`` up (0: no bucket counted yet).
        self._packed = 0
        self._lo = 0
        self._n = len(self._values)
        self._min = min(self._values, default=math.inf)
        self._max = max(self._values, default=-math.inf)
        #: Past EXACT: from then on only the histogram is kept. Folded when first read, not here:
        #: merging an old row's long lists first and folding once is much cheaper.
        self._hist = self._n > EXACT
        #: The histogram's running totals from bucket ``_lo`` up, kept between reads (None: to count again).
        self._cumulative: list[int] | None = None

    # -- building ---------------------------------------------------------------------------

    def add(self, seconds: float) -> None:
        """Count one value."""
        seconds = float(seconds)
        self._values.append(seconds)
        self._cumulative = None
        self._n += 1
        if seconds < self._min:
            self._min = seconds
        if seconds > self._max:
            self._max = seconds

    def merge(self, other: Durations) -> None:
        """Add ``other``'s values to these (``other`` keeps its values, and shares nothing with these)."""
        if not other._n:
            return
        self._values.extend(other._values)
        self._cumulative = None
        if other._packed:
            self._add_packed(other._lo, other._packed)
        self._hist = self._hist or other._hist
        self._n += other._n
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> Durations:
        """Return an independent copy."""
        found = Durations()
        found.merge(self)
        return found

    def _add_packed(self, lo: int, packed: int) -> None:
        if not self._packed:
            self._lo, self._packed = lo, packed
        elif lo >= self._lo:
            self._packed += packed << ((lo - self._lo) * _FIELD)
        else:
            self._packed = (self._packed << ((self._lo - lo) * _FIELD)) + packed
            self._lo = lo

    def _fold(self) -> None:
        """Move the buffered values into the histogram once there are (or were) more than EXACT."""
        if not self._values or (not self._hist and self._n <= EXACT):
            return
        # sorted once (in C), then one bisect per bucket met: an old row's thousands of values cost a sort
        ordered = sorted(self._values)
        counts: dict[int, int] = {}
        i, end = 0, len(ordered)
        while i < end:
            k = bucket_of(ordered[i])
            upper = bucket_edges(k)[1]  # exclusive, but inclusive below zero (the buckets mirror)
            j = bisect_right(ordered, upper, i) if k < 0 else bisect_left(ordered, upper, i)
            counts[k] = j - i
            i = j
        lo = min(counts)
        dense = array(_TYPECODES[4], bytes(4 * (max(counts) - lo + 1)))
        for k, c in counts.items():
            dense[k - lo] = c
        if sys.byteorder == "big":
            dense.byteswap()
        self._add_packed(lo, int.from_bytes(dense.tobytes(), "little"))
        self._values = []
        self._hist = True

    def _counts(self) -> array[int]:
        """The bucket counts from ``_lo`` up (the histogram folded first)."""
        self._fold()
        size = (self._packed.bit_length() + _FIELD - 1) // _FIELD
        dense = array(_TYPECODES[4])
        dense.frombytes(self._packed.to_bytes(size * 4, "little"))
        if sys.byteorder == "big":
            dense.byteswap()
        return dense

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Durations):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        exact = self.exact
        if exact is not None:
            return f"Durations({list(exact)!r})"
        return f"Durations(n={self._n}, min={self._min}, max={self._max}, buckets from {self._lo})"

    @property
    def exact(self) -> tuple[float, ...] | None:
        """The values, ascending, while they are kept exactly; None once only the histogram is."""
        self._fold()
        return None if self._hist else tuple(sorted(self._values))

    @property
    def min(self) -> float | None:
        """The smallest value (exact even in a histogram), or None when empty."""
        return self._min if self._n else None

    @property
    def max(self) -> float | None:
        """The largest value (exact even in a histogram), or None when empty."""
        return self._max if self._n else None

    def percentile(self, pct: float) -> float | None:
        """Return the nearest-rank percentile, as :func:`monitor.kpi.reports.percentile` does for a list.

        Exact while the values are kept. From the histogram: the bucket holding that rank, the
        value interpolated (log-linearly) between its edges by the rank's place among the
        bucket's counts, clamped to the exact minimum and maximum — so p100 is the maximum and
        the error is under one bucket (2 %).
        """
        if not self._n:
            return None
        rank = max(1, math.ceil(pct * self._n / 100))
        self._fold()
        if not self._hist:
            return sorted(self._values)[rank - 1]
        if rank >= self._n:
            return self._max
        if rank == 1:
            return self._min
        if self._cumulative is None:
            self._cumulative = list(accumulate(self._counts()))
        cumulative = self._cumulative
        i = bisect_left(cumulative, rank)  # the first bucket whose running total reaches the rank
        seen = cumulative[i - 1] if i else 0
        count = cumulative[i] - seen
        k = self._lo + i
        lower, upper = bucket_edges(k)
        where = (rank - seen - 0.5) / count
        if k == 0:
            value = 0.0  # under a millisecond in size: the values are rounded to milliseconds
        elif k > 0:
            value = lower * (upper / lower) ** where
        else:
            value = upper * (lower / upper) ** where
        return round(min(max(value, self._min), self._max), 3)

    # -- JSON -------------------------------------------------------------------------------

    def to_json(self) -> list[float] | dict[str, Any]:
        """Return what the rollup stores: the values (ascending) while exact, else the histogram."""
        exact = self.exact
        if exact is not None:
            return list(exact)
        counts = self._counts()
        top = max(counts)
        width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
        narrow = array(_TYPECODES[width], counts)
        if sys.byteorder == "big":
            narrow.byteswap()
        return {"n": self._n, "min": self._min, "max": self._max, "gamma": GAMMA, "lo": self._lo, "width": width,
                "counts": base64.b64encode(narrow.tobytes()).decode("ascii")}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> Durations:
        """Read what :meth:`to_json` wrote, or an old row's list of every value.

        Raises:
            ValueError: naming what is wrong with ``data`` (a histogram of other buckets, counts that do not add up).
        """
        if isinstance(data, list):
            return cls(data)
        if not isinstance(data, dict):
            raise ValueError(f"durations: expected a list of seconds or a histogram, got {str(data)[:60]!r}")
        if data.get("gamma") != GAMMA:
            raise ValueError(f"durations.gamma: expected {GAMMA}, got {data.get('gamma')!r}")
        width = data.get("width")
        if width not in (1, 2, 4):
            raise ValueError(f"durations.width: expected 1, 2 or 4 bytes, got {width!r}")
        try:
            raw = base64.b64decode(data["counts"], validate=True)
            narrow = array(_TYPECODES[width])
            narrow.frombytes(raw)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"durations.counts: expected base64 of {width}-byte counts ({err})") from None
        if sys.byteorder == "big":
            narrow.byteswap()
        n = data.get("n")
        if sum(narrow) != n or not n:
            raise ValueError(f"durations: counts add up to {sum(narrow)}, n is {n!r}")
        wide = narrow if width == 4 else array(_TYPECODES[4], narrow)
        if sys.byteorder == "big":
            wide.byteswap()
        found = cls.__new__(cls)  # not __init__: a cold KPI view reads thousands of these
        found._values = []
        found._cumulative = None
        found._hist = True
        found._lo = int(data["lo"])
        found._packed = int.from_bytes(wide.tobytes(), "little")
        found._n = int(n)
        found._min, found._max = float(data["min"]), float(data["max"])
        return found
