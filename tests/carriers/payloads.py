"""The kit's carrier fakes bound to the recorded payloads in ``tests/fixtures/<carrier>``.

The fakes themselves live in :mod:`carriers.testing`; here they read every named answer from the
test fixtures (the kit ships only a few defaults), and ``recorded`` loaders read the same files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from carriers.kuaidi100 import Kuaidi100Carrier, Kuaidi100Settings
from carriers.testing import kuaidi100, sf, zto
from carriers.testing.server import Reply, load_answer

FIXTURES = Path(__file__).parents[1] / "fixtures"
SF_FIXTURES = FIXTURES / "sf"
ZTO_FIXTURES = FIXTURES / "zto"
KUAIDI100_FIXTURES = FIXTURES / "kuaidi100"
NOW = datetime(2026, 11, 11, 1, 30, tzinfo=UTC)
T = TypeVar("T")


def sf_recorded(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/sf/<name>.json``."""
    return load_answer(SF_FIXTURES, name)


def zto_recorded(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/zto/<name>.json``."""
    return load_answer(ZTO_FIXTURES, name)


def kuaidi100_recorded(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/kuaidi100/<name>.json``."""
    return load_answer(KUAIDI100_FIXTURES, name)


class ZTOReply(Reply):
    """A reply, or a recorded ZTO answer from ``tests/fixtures/zto``."""

    @classmethod
    def recorded(cls, name: str, delay: float = 0.0) -> Reply:
        return Reply.from_recorded(zto_recorded(name), delay)


class Kuaidi100Reply(Reply):
    """A reply, or a recorded Kuaidi100 answer from ``tests/fixtures/kuaidi100``."""

    @classmethod
    def recorded(cls, name: str, delay: float = 0.0) -> Reply:
        return Reply.from_recorded(kuaidi100_recorded(name), delay)


class FakeSF(sf.FakeSF):
    """The kit's 丰桥 answering from ``tests/fixtures/sf``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(fixtures=SF_FIXTURES, **options)

    @staticmethod
    def recorded_pair(name: str) -> tuple[int, str]:
        """Return (status, raw body) of a recorded SF answer."""
        return FakeSF().fixture(name)


class FakeZTO(zto.FakeZTO):
    """The kit's ZOP answering from ``tests/fixtures/zto``."""

    def __init__(self, tracks: dict[str, str] | None = None, **options: Any) -> None:
        super().__init__(tracks, fixtures=ZTO_FIXTURES, **options)


class FakeKuaidi100(kuaidi100.FakeKuaidi100):
    """The kit's Kuaidi100 answering from ``tests/fixtures/kuaidi100``."""

    def __init__(self, tracks: dict[str, str] | None = None, force: Reply | None = None) -> None:
        super().__init__(tracks, force, fixtures=KUAIDI100_FIXTURES)


async def no_wait(delay: float) -> None:
    """Stand in for asyncio.sleep so retried queries do not wait."""


def with_carrier(settings: Kuaidi100Settings, action: Callable[[Kuaidi100Carrier], Awaitable[T]]) -> T:
    """Run ``action`` on a carrier holding a real ``httpx.AsyncClient``, on a fresh event loop."""

    async def main() -> T:
        async with httpx.AsyncClient() as http:
            return await action(Kuaidi100Carrier(settings, http, sleep=no_wait))

    return asyncio.run(main())
