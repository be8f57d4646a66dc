"""Fixtures of the API tests: a running server on each database backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.store.store import Store
from tests.api.server import ApiServer, running_api


@pytest.fixture
def api(store: Store) -> Iterator[ApiServer]:
    """Yield the API served by uvicorn on 127.0.0.1, on SQLite and on PostgreSQL."""
    with running_api(store) as server:
        yield server
