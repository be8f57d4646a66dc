"""Run an adapter against one fuzzed answer and check the only two outcomes allowed.

Each call is answered by ``httpx.MockTransport`` with the fuzzed bytes (the adapter's own
transport seam): the adapter either returns results we could store, or raises a
:class:`~carriers.errors.CarrierError`. Anything else (KeyError, TypeError, RecursionError,
OverflowError, a ValueError from datetime...) fails the property.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, event, settings

from carriers.errors import CarrierError
from carriers.model import InterceptResult, TrackingResult

T = TypeVar("T")

#: Examples per property: enough to find the classic mistakes, small enough for CI (a few seconds each).
#: CI replays the same examples every run (derandomize), so a red build is a change, not the dice;
#: locally every run explores new ones, and ``FUZZ_EXAMPLES=5000`` digs deeper.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def _no_wait(_seconds: float) -> None:
    """Stand in for asyncio.sleep so a retried call does not wait."""


NO_WAIT = _no_wait


def answering(body: bytes, status: int = 200) -> httpx.AsyncClient:
    """An HTTP client whose every request is answered with ``status`` and exactly ``body``."""
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: httpx.Response(status, content=body)))


def outcome(call: Callable[[], Awaitable[T]]) -> T | CarrierError:
    """Run ``call``; return its result or the typed error it raised (any other exception propagates)."""

    async def run() -> T | CarrierError:
        try:
            return await call()
        except CarrierError as err:
            return err

    return asyncio.run(run())


def storable(results: Any) -> None:
    """Assert that tracking results are what the store can take: aware times that exist in UTC."""
    assert isinstance(results, list)
    for result in results:
        assert isinstance(result, TrackingResult)
        for scan in result.events:
            assert scan.time.utcoffset() is not None
            scan.time.astimezone(UTC)  # raises OverflowError for a time before year 1 in UTC


def typed(value: Any) -> None:
    """Assert an outcome is results we can store, an intercept answer, or a typed carrier error."""
    event(
        type(value).__name__ if not isinstance(value, list) else f"{len(value)} results"
    )  # --hypothesis-show-statistics
    if isinstance(value, CarrierError | InterceptResult):
        return
    storable(value)
