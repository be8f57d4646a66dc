"""What every handler needs, passed in once by whoever builds the app (the daemon, a test).

Handlers reach it through the :func:`context` dependency rather than module globals, so two
apps on two monitors can live in one process, and tests build the real thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request

from monitor.api.errors import ApiError
from monitor.clock import Clock
from monitor.config import ApiSettings
from monitor.metrics import Metrics
from monitor.service import Monitor
from monitor.store.store import Store

#: Most items one list page returns.
MAX_LIMIT = 500


def _always_ready() -> bool:
    return True


@dataclass
class ApiContext:
    """The monitor and its surroundings, as the HTTP API sees them.

    ``ready`` tells ``/readyz`` whether the daemon is up (scheduler started, plugins loaded);
    it defaults to always ready for tools and tests that need no start-up.
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


def context(request: Request) -> ApiContext:
    """Return the context the app was built with."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def cursor_id(cursor: str | None) -> int | None:
    """Read a list cursor (opaque to clients; today the last id seen)."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise ApiError(422, "invalid_field", "not a cursor this API returned", field="cursor", value=cursor)
    return int(cursor)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Most items to return (1–{MAX_LIMIT}).", examples=[100])]
Cursor = Annotated[
    str | None,
    Query(description="`next_cursor` of the previous page; omit for the first (newest) page.", examples=["1042"]),
]
