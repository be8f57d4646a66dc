"""Retry one carrier call with capped exponential backoff and full jitter.

A carrier that answers 5xx, times out or says "slow down" usually answers the same request a
moment later, so an adapter retries those few errors itself instead of failing a whole poll
round. Which errors are worth it is fixed by the error tree of :mod:`carriers.errors`::

    CarrierUnavailable      retried: backoff ``rand() * min(cap, base * 2**(retry - 1))``
    CarrierRateLimited      retried: after ``retry_after`` when the carrier says; if that is
                            longer than ``cap`` it is re-raised at once, so the caller's
                            scheduler waits the full time instead of us asking too early
    CarrierAuthError        never retried: the same credentials fail the same way
    CarrierResponseError    never retried: the same answer would be unreadable again

``sleep`` and ``rand`` are passed in (``asyncio.sleep`` and ``random.random`` by default), so
tests run without waiting and without chance; nothing here reads the wall clock. Only
idempotent calls may be wrapped: a track query, or an intercept that sends the caller's
idempotency key as the carrier's request id.

The loop is tenacity's (``AsyncRetrying``: stop, retry predicate, wait, sleep and a hook before
each sleep); the policy stays ours because tenacity's jittered waits draw from the global
``random`` module, and Retry-After (a wait the carrier names, or a refusal past ``cap``) is a
custom wait anyway.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from carriers.errors import CarrierError, CarrierRateLimited, CarrierUnavailable

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]
Rand = Callable[[], float]
#: Called before each wait with (the attempt that failed, 1-based; the delay; the error).
OnRetry = Callable[[int, float, CarrierError], None]

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 3
MAX_TIMEOUT_SECONDS = 300.0
MAX_RETRIES = 10
RETRYABLE: tuple[type[CarrierError], ...] = (CarrierUnavailable, CarrierRateLimited)

log = structlog.get_logger("carriers.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one call is tried.

    ``attempts`` counts every try, the first included (``retries + 1`` of an adapter's
    settings); ``base`` and ``cap`` bound the backoff in seconds; ``timeout`` is the per-request
    timeout, in seconds, that the adapter hands to httpx.
    """

    attempts: int = DEFAULT_RETRIES + 1
    base: float = 0.5
    cap: float = 8.0
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"attempts: expected a whole number ≥ 1, got {self.attempts!r}")
        for name in ("base", "cap", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name}: expected a positive number of seconds, got {value!r}")

    @classmethod
    def from_settings(cls, retries: int, timeout_seconds: float) -> RetryPolicy:
        """Build the policy of an adapter from its ``retries`` and ``timeout_seconds`` settings."""
        return cls(attempts=retries + 1, timeout=timeout_seconds)

    def backoff(self, retry: int, rand: float) -> float:
        """Return the full-jitter wait before retry number ``retry`` (1 for the first retry)."""
        return rand * min(self.cap, self.base * 2 ** (retry - 1))

    def retries(self, error: BaseException) -> bool:
        """Tell whether ``error`` is worth another try: a retryable error, unless it asks for more than ``cap``."""
        if not isinstance(error, RETRYABLE):
            return False
        return not (isinstance(error, CarrierRateLimited) and max(0.0, error.retry_after or 0.0) > self.cap)

    def wait(self, retry: int, error: BaseException, rand: float) -> float:
        """Return the wait before retry ``retry``: the carrier's Retry-After when it gives one, else the backoff."""
        if isinstance(error, CarrierRateLimited) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return self.backoff(retry, rand)

    def delay(self, retry: int, error: CarrierError, rand: float) -> float | None:
        """Return how long to wait before retry ``retry`` after ``error``, or None to stop retrying."""
        if retry >= self.attempts or not self.retries(error):
            return None
        return self.wait(retry, error, rand)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rand: Rand = random.random,
    on_retry: OnRetry | None = None,
    carrier: str = "",
    operation: str = "",
) -> T:
    """Await ``fn()`` until it succeeds, retrying the errors ``policy`` allows.

    Args:
        fn: builds and sends the request afresh on each call (a new request id for a query,
            the same idempotency key for an intercept).
        policy: attempts, backoff bounds and timeout.
        sleep: awaited with each delay in seconds.
        rand: a number in [0, 1) for the jitter.
        on_retry: told of each retry before its wait (metrics, tests).
        carrier, operation: logged with each retry.

    Returns:
        What ``fn`` returned on the attempt that succeeded.

    Raises:
        CarrierError: the last error, once it is not retryable or the attempts are used up.
    """

    def wait(state: RetryCallState) -> float:
        return policy.wait(state.attempt_number, _error(state), rand())

    def before_sleep(state: RetryCallState) -> None:
        assert state.next_action is not None  # set by tenacity just before this hook
        error, delay = _error(state), state.next_action.sleep
        log.info(
            "carrier.retry",
            carrier=carrier or error.carrier,
            operation=operation,
            attempt=state.attempt_number,
            delay=round(delay, 3),
            error=type(error).__name__,
            code=error.code,
        )
        if on_retry is not None:
            on_retry(state.attempt_number, delay, error)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        retry=retry_if_exception(policy.retries),
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,  # the carrier's own error, not tenacity's RetryError
    )

    async def attempt() -> T:  # a coroutine function: tenacity calls a plain callable (a lambda) without awaiting
        return await fn()

    return await retrying(attempt)


def _error(state: RetryCallState) -> CarrierError:
    """Return the CarrierError the attempt failed with (only those are retried)."""
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, CarrierError)
    return error


class Backoff(TypedDict, total=False):
    """The retry dependencies an adapter's constructor takes from the factory's context."""

    sleep: Sleep
    rand: Rand


def backoff_context(context: Mapping[str, Any]) -> Backoff:
    """Pick ``sleep`` and ``rand`` out of a factory context, when the service (or a test) passes them."""
    picked: Backoff = {}
    if "sleep" in context:
        picked["sleep"] = context["sleep"]
    if "rand" in context:
        picked["rand"] = context["rand"]
    return picked


def timeout_setting(raw: Mapping[str, Any], key: str = "timeout_seconds") -> float:
    """Read the optional per-request timeout of an adapter's table (default 10 s)."""
    value = raw.get(key, DEFAULT_TIMEOUT_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"{key}: expected a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS:g}, got {value!r}"
        )
    return float(value)


def retries_setting(raw: Mapping[str, Any], key: str = "retries") -> int:
    """Read the optional number of retries after a failed call (default 3; 0 turns retrying off)."""
    value = raw.get(key, DEFAULT_RETRIES)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ValueError(f"{key}: expected a whole number from 0 to {MAX_RETRIES}, got {value!r}")
    return value
