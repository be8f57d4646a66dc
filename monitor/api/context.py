"""What every handler needs, passed in once by whoever builds the app (the daemon, a test).

Handlers reach it through the :func:`context` dependency rather than module globals, so two
apps on two monitors can live in one process, and tests build the real thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Query, Request

from monitor.api.errors import ApiError
from monitor.clock import Clock
from monitor.config import ApiSettings, KpiSettings, Settings
from monitor.metrics import Metrics
from monitor.service import Monitor
from monitor.store.store import Store
from monitor.store.views import Views, read

T = TypeVar("T")

#: Most items one list page returns.
MAX_LIMIT = 500
#: Largest id (and cursor) there can be: ids are 32-bit INTEGER columns on PostgreSQL.
MAX_ID = 2**31 - 1
#: Longest text a filter or path segment may carry (the widest column, order_id, holds 64).
MAX_TEXT = 64
#: Text of filters and path segments: no control characters (PostgreSQL refuses NUL in text).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def _always_ready() -> bool:
    return True


@dataclass
class ApiContext:
    """The monitor and its surroundings, as the HTTP API sees them.

    ``ready`` tells ``/readyz`` whether the daemon is up (scheduler started, plugins loaded);
    it defaults to always ready for tools and tests that need no start-up. ``clock`` is
    business time (simulated in the demo); ``wall`` is the real time that signed requests'
    timestamps are checked against (the refund webhook), the business clock unless given.
    """

    monitor: Monitor
    store: Store
    clock: Clock
    settings: ApiSettings
    adapters: Mapping[str, Any]
    metrics: Metrics
    ready: Callable[[], bool] = _always_ready
    #: Days in reports are local days of this zone (the settings' ``timezone``).
    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    wall: Clock | None = None
    #: The targets the console's 指标 page draws (the settings' ``[kpi]``).
    kpi: KpiSettings = field(default_factory=KpiSettings)
    #: The whole loaded configuration, for the console's read-only 设置 page (None: not shown).
    config: Settings | None = None

    def wall_now(self) -> datetime:
        """Return the real time that remote parties' timestamps are checked against."""
        return (self.wall or self.clock).now()

    async def offload(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run blocking database work ``fn(*args)`` off the event loop, on the store's threads."""
        return await self.store.offload(fn, *args)

    async def read(self, fn: Callable[[Views], T]) -> T:
        """Run ``fn(views)`` in one read transaction off the event loop and return what it returns."""

        def work() -> T:
            with read(self.store) as views:
                return fn(views)

        return await self.store.offload(work)


def context(request: Request) -> ApiContext:
    """Return the context the app was built with."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def cursor_id(cursor: str | None) -> int | None:
    """Read a list cursor (opaque to clients; today the last id seen)."""
    if cursor is None or cursor == "":
        return None
    # isascii: str.isdigit() also says yes to "²" and other digits int() refuses.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 10 or int(cursor) > MAX_ID:
        raise ApiError(422, "invalid_field", "not a cursor this API returned", field="cursor", value=cursor)
    return int(cursor)


def text_query(description: str, examples: list[str] | None = None) -> Any:
    """Declare a text filter: at most :data:`MAX_TEXT` characters, no control characters."""
    return Query(description=description, examples=examples, max_length=MAX_TEXT, pattern=TEXT_PATTERN)


def text_path(description: str, max_length: int = MAX_TEXT) -> Any:
    """Declare a text path segment, bounded like :func:`text_query`."""
    return Path(description=description, min_length=1, max_length=max_length, pattern=TEXT_PATTERN)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Most items to return (1–{MAX_LIMIT}).", examples=[100])]
Cursor = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page; omit for the first (newest) page.",
        examples=["1042"],
        max_length=10,
        pattern="^[0-9]*$",
    ),
]
#: A row id in a path: 1 to 2^31 - 1.
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="The row's id.", examples=[17])]
