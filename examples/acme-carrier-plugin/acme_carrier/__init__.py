"""Acme Express: an example carrier plugin for parcel-monitor, small enough to read in one sitting.

Acme's (fictional) API answers ``GET {base_url}/track?no=A1,A2`` with
``{"parcels": [{"no": "A1", "scans": [{"code": "PU", "at": "2026-11-11 09:30:00", "text": "..."}]}]}``.
A real plugin splits this into client.py, mapping.py, schema.py and settings.py like the built-ins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from carriers import (
    TRACK,
    AdapterInfo,
    CarrierResponseError,
    CarrierUnavailable,
    Limits,
    Status,
    TrackingEvent,
    TrackingResult,
)

CODE = "acme"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Acme's scan codes (its API reference, "scan codes"); an unknown code is kept, never guessed.
STATUS_BY_CODE = {
    "PU": Status.PICKED_UP,
    "TR": Status.IN_TRANSIT,
    "OD": Status.OUT_FOR_DELIVERY,
    "DL": Status.DELIVERED,
}


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """Where Acme's API lives."""

    base_url: str

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AcmeSettings:
        """Read ``[carriers.acme]``; errors name the key."""
        url = raw.get("base_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: expected an http(s) URL, got {url!r}")
        return cls(url.rstrip("/"))


class AcmeAdapter:
    """Track Acme parcels, ten numbers a call."""

    code = CODE
    limits = Limits(batch_size=10, requests_per_second=5.0)

    def __init__(self, settings: AcmeSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Fetch and map the history of ``numbers``."""
        try:
            response = await self.http.get(f"{self.settings.base_url}/track", params={"no": ",".join(numbers)})
        except httpx.HTTPError as err:
            raise CarrierUnavailable(f"acme: {type(err).__name__}", carrier=CODE) from err
        if response.status_code >= 500:
            raise CarrierUnavailable(f"acme: HTTP {response.status_code}", carrier=CODE)
        try:
            parcels = {p["no"]: p["scans"] for p in response.json()["parcels"]}
            return [self._result(n, parcels.get(n)) for n in numbers]
        except (ValueError, KeyError, TypeError) as err:
            raise CarrierResponseError(f"acme: unreadable answer ({err})", carrier=CODE, raw=response.text) from err

    def _result(self, number: str, scans: list[dict[str, str]] | None) -> TrackingResult:
        if scans is None:
            return TrackingResult(CODE, number, problem="not_found")
        events = tuple(
            TrackingEvent(
                CODE,
                number,
                datetime.strptime(s["at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI),
                STATUS_BY_CODE.get(s["code"]),
                raw_code=s["code"],
                raw_text=s.get("text", ""),
            )
            for s in scans
        )
        return TrackingResult(CODE, number, events)


def _build(settings: dict[str, Any], context: dict[str, Any]) -> AcmeAdapter:
    return AcmeAdapter(AcmeSettings.from_mapping(settings), context["http"])


INFO = AdapterInfo(
    code=CODE,
    label="Acme Express (example plugin)",
    factory=_build,
    capabilities=frozenset({TRACK}),
    settings_type=AcmeSettings,
)
