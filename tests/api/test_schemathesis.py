"""Schemathesis over the running API's own OpenAPI document: no generated request may get a 5xx.

The real API on a real uvicorn server (tests/api/server.py), with a few parcels and open
anomalies so the ids it draws sometimes exist. Every operation gets valid (positive) and
invalid (negative) requests, bounded by :data:`EXAMPLES` each; the refund webhook's bodies are
signed like a platform signs them, so its parser is exercised, not only its 401.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from monitor.store.store import Store
from tests.api.server import SECRET, SNIPPET, TOKEN, ApiServer, running_api

#: Requests per operation and mode: 16 operations x 2 modes x 100 take about 30 s per backend.
EXAMPLES = 100
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),  # CI replays the same requests; a local run explores new ones
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def seeded(store: Store) -> Iterator[ApiServer]:
    """Serve the API with parcels and open anomalies (ids 1... exist)."""
    with running_api(store) as api:
        batch = [
            {
                "order_id": f"O{i}",
                "carrier": "sandbox",
                "tracking_no": f"SB{i}",
                "shipped_at": "2026-11-11T09:00:00+08:00",
            }
            for i in range(1, 6)
        ]
        with api.client() as http:
            assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201
        api.clock.advance(timedelta(hours=25))
        assert api.tick() > 0
        yield api


def configured_carrier(body: Any) -> None:
    """Point generated shipments at a configured carrier, so valid ones are stored, not refused as unknown."""
    items = body.get("shipments") if isinstance(body, dict) and "shipments" in body else [body]
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "carrier" in item:
            item["carrier"] = "sandbox"


def call(api: ApiServer, case: Any) -> Any:
    """Send one generated request; refund bodies are signed over the exact bytes sent."""
    if case.operation.path == "/api/v1/shipments":
        configured_carrier(case.body)
    if case.operation.path != "/api/v1/refunds" or not isinstance(case.body, dict | list | str | int | float):
        return case.call(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    body = json.dumps(case.body, ensure_ascii=False).encode()
    headers = SNIPPET["sign"](SECRET, body, int(api.clock.now().timestamp()))
    headers |= {"Content-Type": "application/json"}
    with httpx.Client(base_url=api.url, timeout=30) as http:
        return http.post("/api/v1/refunds", content=body, headers=headers)


def exercise(api: ApiServer, operation: Any, mode: Any, failures: list[str], statuses: Counter[int]) -> None:
    """Send up to EXAMPLES generated requests to one operation; record every 5xx and failed check."""

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = call(api, case)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.as_curl_command()}\n    {response.text[:300]}")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as err:  # noqa: BLE001 - every failed check is collected and reported at the end
            failures.append(f"{operation.label} ({mode.value}): {str(err)[:400]}")

    try:
        run()
    except Unsatisfiable:
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label  # no parameter to get wrong


def test_no_generated_request_gets_a_server_error(seeded: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(f"{seeded.url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in MODES:
            exercise(seeded, operation, mode, failures, statuses)
    took = time.perf_counter() - started
    print(f"schemathesis: {len(operations)} operations x {len(MODES)} modes x {EXAMPLES} examples in {took:.1f} s")
    print(f"schemathesis: answers by status {dict(sorted(statuses.items()))}")
    assert len(operations) >= 16
    assert sum(n for status, n in statuses.items() if status >= 500) == 0, "\n".join(failures[:20])
    assert not failures, "\n".join(failures[:20])
