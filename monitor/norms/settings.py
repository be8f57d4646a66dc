"""``[norms]``: the learning window, how many samples make a norm, and which quantile the rule waits for.

::

    [norms]
    window_days = 60                 # finished parcels delivered in the last 60 days
    min_samples = 30                 # fewer: fall back to the region class, the carrier, then the preset
    quantile = "p95"                 # slow_for_route waits this long (p50, p90, p95 or p99)
    estimate_delivery_overdue = false  # delivery_overdue at the p90 estimate when a shipment has no promise
"""

from __future__ import annotations

from typing import Annotated

from monitor.tables import Table, check, one_of, whole_at_least

QUANTILES = ("p50", "p90", "p95", "p99")


class NormSettings(Table):
    """The ``[norms]`` section, validated."""

    window_days: Annotated[int, whole_at_least(1)] = 60
    min_samples: Annotated[int, whole_at_least(1)] = 30
    quantile: Annotated[str, one_of(*QUANTILES)] = "p95"
    estimate_delivery_overdue: Annotated[bool, check(lambda v: isinstance(v, bool), "true or false")] = False
