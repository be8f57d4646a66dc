"""carriers.retry: backoff maths, which errors are retried, Retry-After, exhaustion, settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from carriers.errors import (
    CarrierAuthError,
    CarrierError,
    CarrierRateLimited,
    CarrierResponseError,
    CarrierUnavailable,
)
from carriers.retry import (
    RetryPolicy,
    backoff_context,
    call_with_retries,
    retries_setting,
    timeout_setting,
)


class Flaky:
    """An async call that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Waits:
    """Record the delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def run(
    fn: Callable[[], Awaitable[str]],
    policy: RetryPolicy | None = None,
    rand: float = 1.0,
    **kwargs: Any,
) -> tuple[str, list[float]]:
    waits = Waits()
    result = asyncio.run(call_with_retries(fn, policy or RetryPolicy(), sleep=waits, rand=lambda: rand, **kwargs))
    return result, waits.delays


def down(code: str = "") -> CarrierUnavailable:
    return CarrierUnavailable("down", carrier="test", code=code)


# --- the policy maths --------------------------------------------------------------------------


def test_backoff_doubles_from_base_up_to_cap() -> None:
    policy = RetryPolicy(attempts=10, base=0.5, cap=8.0)
    assert [policy.backoff(n, 1.0) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.999, 1.998)])
def test_full_jitter_scales_the_whole_window(rand: float, expected: float) -> None:
    assert RetryPolicy(base=0.5, cap=8.0).backoff(3, rand) == pytest.approx(expected)


def test_delay_is_none_when_the_attempts_are_used_up_or_the_error_is_not_retryable() -> None:
    policy = RetryPolicy(attempts=3)
    assert policy.delay(1, down(), 1.0) == 0.5
    assert policy.delay(2, down(), 1.0) == 1.0
    assert policy.delay(3, down(), 1.0) is None
    assert policy.delay(1, CarrierAuthError("no"), 1.0) is None
    assert policy.delay(1, CarrierResponseError("?"), 1.0) is None


def test_retry_after_is_used_as_is_and_a_longer_one_than_cap_stops_retrying() -> None:
    policy = RetryPolicy(cap=8.0)
    assert policy.delay(1, CarrierRateLimited("slow", retry_after=3), 0.1) == 3.0
    assert policy.delay(1, CarrierRateLimited("slow", retry_after=8), 0.1) == 8.0
    assert policy.delay(1, CarrierRateLimited("slow", retry_after=0), 0.1) == 0.0
    assert policy.delay(1, CarrierRateLimited("slow", retry_after=120), 0.1) is None
    # without Retry-After a rate limit backs off like any temporary error
    assert policy.delay(2, CarrierRateLimited("slow"), 0.5) == 0.5


def test_the_default_policy_matches_the_adapter_settings_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.attempts, policy.base, policy.cap, policy.timeout) == (4, 0.5, 8.0, 10.0)
    assert RetryPolicy.from_settings(retries=3, timeout_seconds=10.0) == policy
    assert RetryPolicy.from_settings(retries=0, timeout_seconds=2.0) == RetryPolicy(attempts=1, timeout=2.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 2.0}, "attempts"),
        ({"base": 0}, "base"),
        ({"cap": -1}, "cap"),
        ({"timeout": "10"}, "timeout"),
    ],
)
def test_a_bad_policy_names_its_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}:"):
        RetryPolicy(**changes)


# --- call_with_retries -------------------------------------------------------------------------


def test_unavailable_is_retried_until_it_succeeds() -> None:
    fn = Flaky(down(), down())
    result, delays = run(fn, RetryPolicy(attempts=3))
    assert (result, fn.calls, delays) == ("ok", 3, [0.5, 1.0])


def test_rate_limited_honours_retry_after_without_jitter() -> None:
    fn = Flaky(CarrierRateLimited("slow", retry_after=2.0), CarrierRateLimited("slow"))
    result, delays = run(fn, rand=0.5)
    assert (result, fn.calls, delays) == ("ok", 3, [2.0, 0.5])


def test_a_retry_after_longer_than_cap_is_left_to_the_caller() -> None:
    error = CarrierRateLimited("slow", retry_after=600)
    fn = Flaky(error)
    with pytest.raises(CarrierRateLimited) as caught:
        run(fn)
    assert caught.value is error
    assert fn.calls == 1


@pytest.mark.parametrize("error", [CarrierAuthError("bad sign"), CarrierResponseError("html", raw="<html>")])
def test_auth_and_response_errors_are_never_retried(error: CarrierError) -> None:
    fn = Flaky(error)
    waits = Waits()
    with pytest.raises(type(error)) as caught:
        asyncio.run(call_with_retries(fn, RetryPolicy(attempts=5), sleep=waits, rand=lambda: 1.0))
    assert caught.value is error
    assert (fn.calls, waits.delays) == (1, [])


def test_an_error_outside_the_carrier_tree_propagates_untouched() -> None:
    fn = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        run(fn)
    assert fn.calls == 1


def test_attempts_exhausted_re_raise_the_last_typed_error() -> None:
    first, second, last = down("1"), CarrierRateLimited("slow", code="2"), down("3")
    fn = Flaky(first, second, last)
    with pytest.raises(CarrierUnavailable) as caught:
        run(fn, RetryPolicy(attempts=3))
    assert caught.value is last
    assert fn.calls == 3


def test_one_attempt_means_no_retry() -> None:
    fn = Flaky(down())
    with pytest.raises(CarrierUnavailable):
        run(fn, RetryPolicy(attempts=1))
    assert fn.calls == 1


def test_on_retry_hears_each_retry_before_the_wait() -> None:
    heard: list[tuple[int, float, str]] = []
    errors = (down("A"), CarrierRateLimited("slow", code="B", retry_after=1))
    run(Flaky(*errors), on_retry=lambda attempt, delay, err: heard.append((attempt, delay, err.code)))
    assert heard == [(1, 0.5, "A"), (2, 1.0, "B")]


def test_each_retry_is_one_key_value_log_event() -> None:
    with capture_logs() as logs:
        run(Flaky(down("S203")), carrier="zto", operation="track")
    assert [e for e in logs if e["event"] == "carrier.retry"] == [
        {
            "event": "carrier.retry",
            "log_level": "info",
            "carrier": "zto",
            "operation": "track",
            "attempt": 1,
            "delay": 0.5,
            "error": "CarrierUnavailable",
            "code": "S203",
        }
    ]


def test_the_carrier_of_the_error_is_logged_when_none_is_given() -> None:
    with capture_logs() as logs:
        run(Flaky(down()))
    assert logs[0]["carrier"] == "test"


def test_a_lambda_returning_a_coroutine_is_awaited_and_retried() -> None:
    """The clients pass ``lambda: self._track_once(numbers)``: not a coroutine function, still awaited."""
    fn = Flaky(down(), down())
    result, delays = run(lambda: fn())
    assert (result, fn.calls, delays) == ("ok", 3, [0.5, 1.0])


def test_the_real_sleep_is_the_default_and_waits_the_delay() -> None:
    async def main() -> str:
        return await call_with_retries(Flaky(down()), RetryPolicy(base=0.01), rand=lambda: 1.0)

    assert asyncio.run(main()) == "ok"


# --- settings helpers --------------------------------------------------------------------------


def test_timeout_and_retries_defaults() -> None:
    assert (timeout_setting({}), retries_setting({})) == (10.0, 3)
    assert (timeout_setting({"timeout_seconds": 2}), retries_setting({"retries": 0})) == (2.0, 0)


@pytest.mark.parametrize("value", [0, -1, 301, True, "10", None, float("nan")])
def test_a_bad_timeout_names_the_key_and_the_value(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        timeout_setting({"timeout_seconds": value})
    assert str(caught.value).startswith("timeout_seconds:")
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize("value", [-1, 11, 1.0, "3", False, None])
def test_bad_retries_name_the_key_and_the_value(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        retries_setting({"retries": value})
    assert str(caught.value).startswith("retries:")
    assert repr(value) in str(caught.value)


def test_backoff_context_picks_only_what_the_service_passed() -> None:
    async def sleep(delay: float) -> None:
        return None

    def rand() -> float:
        return 0.0

    assert backoff_context({"http": object()}) == {}
    assert backoff_context({"sleep": sleep, "rand": rand, "clock": None}) == {"sleep": sleep, "rand": rand}
