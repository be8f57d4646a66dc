"""Shipments as merchants hand them to us (API, CSV, replay), validated and stored once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from monitor.clock import Clock, as_utc
from monitor.errors import ShipmentError
from monitor.norms.estimate import promised_by_norm
from monitor.norms.model import NormBook
from monitor.rules.regions import normalize_province
from monitor.rules.ruleset import RuleSet
from monitor.rules.timeline import ParcelState, Schedule, deadlines
from monitor.store.store import Store

log = structlog.get_logger("monitor.intake.shipments")

#: Largest order amount: 2^31 - 1 fen, what a PostgreSQL INTEGER column holds.
MAX_AMOUNT = Decimal("21474836.47")
#: Years a shipment's times may have; outside them the deadline arithmetic overflows.
YEARS = (2000, 2100)
#: How a presale flag may be written (CSV cells, JSON strings), case ignored; anything else is refused,
#: because a guessed "false" arms a 24-hour pickup deadline and false pickup alerts for a presale order.
PRESALE_WORDS = {
    "true": True, "1": True, "是": True, "y": True, "yes": True,
    "false": False, "0": False, "否": False, "n": False, "no": False, "": False,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Shipment:
    """One parcel an order was shipped in."""

    order_id: str
    carrier: str
    tracking_no: str
    shipped_at: datetime
    pickup_deadline: datetime | None = None
    promised_delivery: datetime | None = None
    presale: bool = False
    shop: str = ""
    origin_province: str | None = None
    destination_province: str | None = None
    amount_fen: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], default_shipped_at: datetime | None = None) -> Shipment:
        """Validate a mapping of fields (as JSON or CSV give them), naming the first bad one."""
        values: dict[str, Any] = {}
        for key in ("order_id", "carrier", "tracking_no"):
            value = raw.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ShipmentError(key, f"required text, got {value!r}")
            values[key] = value.strip()
        shipped = raw.get("shipped_at") or default_shipped_at
        if shipped is None:
            raise ShipmentError("shipped_at", "required")
        values["shipped_at"] = parse_time(shipped, "shipped_at")
        for key in ("pickup_deadline", "promised_delivery"):
            if raw.get(key) not in (None, ""):
                values[key] = parse_time(raw[key], key)
        values["presale"] = parse_presale(raw.get("presale", False))
        shop = raw.get("shop") or ""
        if not isinstance(shop, str):
            raise ShipmentError("shop", f"expected text, got {shop!r}")
        values["shop"] = shop
        for key in ("origin_province", "destination_province"):
            if raw.get(key):
                try:
                    values[key] = normalize_province(str(raw[key]))
                except ValueError as err:
                    raise ShipmentError(key, str(err)) from None
        if raw.get("amount") not in (None, ""):
            values["amount_fen"] = parse_amount(raw["amount"])
        return cls(**values)


def parse_presale(value: Any) -> bool:
    """Read a presale flag: a boolean, or one of :data:`PRESALE_WORDS`."""
    if isinstance(value, str) and value.strip().lower() in PRESALE_WORDS:
        return PRESALE_WORDS[value.strip().lower()]
    if isinstance(value, bool):
        return value
    raise ShipmentError("presale", f"expected true/false, 1/0, 是/否 or Y/N, got {value!r}")


def parse_time(value: Any, field: str) -> datetime:
    """Parse an ISO 8601 time that carries an offset, in the years a shipment can have (2000–2100)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ShipmentError(field, f"not an ISO 8601 time: {value!r}") from None
    else:
        raise ShipmentError(field, f"expected an ISO 8601 time, got {value!r}")
    if moment.tzinfo is None:
        raise ShipmentError(field, f"time without an offset: {value!r} (write e.g. +08:00)")
    if not YEARS[0] <= moment.year <= YEARS[1]:  # year 1 or 9999 overflow deadline arithmetic
        raise ShipmentError(field, f"expected a year from {YEARS[0]} to {YEARS[1]}, got {value!r}")
    return as_utc(moment)


def parse_amount(value: Any) -> int:
    """Parse an order amount in yuan into fen, at most what the store's 32-bit column holds."""
    text = str(value).strip()
    try:
        amount = Decimal(text) if len(text) <= 32 else None
    except InvalidOperation:
        amount = None
    if amount is None or isinstance(value, bool):
        raise ShipmentError("amount", f"expected a number of yuan, got {value!r}")
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ShipmentError("amount", f"expected a number of yuan from 0 to {MAX_AMOUNT}, got {value!r}")
    return int((amount * 100).quantize(Decimal(1)))


class ShipmentBook:
    """Add shipments to the store with their rule deadlines armed."""

    def __init__(self, store: Store, rules: RuleSet, clock: Clock, norms: NormBook | None = None) -> None:
        """``norms``: the learned route norms, in memory (``slow_for_route`` before the first scan)."""
        self.store = store
        self.rules = rules
        self.clock = clock
        self.norms = norms

    def row(self, s: Shipment) -> dict[str, Any]:
        """Return the parcel row for a new shipment."""
        t = self.rules.thresholds(s.carrier, s.shop)
        hours = t.presale_pickup_hours if s.presale else t.pickup_hours
        pickup_deadline = s.pickup_deadline or s.shipped_at + timedelta(hours=hours)
        region = self.rules.regions.classify(s.origin_province, s.destination_province)
        route = (s.carrier, s.origin_province, s.destination_province, region)
        promised = s.promised_delivery
        if promised is None and self.norms is not None:
            promised = promised_by_norm(self.norms, s.shipped_at, *route)
        schedule = Schedule(s.shipped_at, pickup_deadline, promised, region, held=False)
        gaps = self.norms.gaps(*route) if self.norms is not None else None
        now = self.clock.now()
        return {
            "carrier": s.carrier,
            "tracking_no": s.tracking_no,
            "order_id": s.order_id,
            "shop": s.shop,
            "shipped_at": s.shipped_at,
            "pickup_deadline": pickup_deadline,
            "promised_delivery": s.promised_delivery,
            "presale": s.presale,
            "origin_province": s.origin_province,
            "destination_province": s.destination_province,
            "region_class": region,
            "amount_fen": s.amount_fen,
            "next_poll_at": now,
            "created_at": now,
            "updated_at": now,
            **deadlines(ParcelState(), schedule, t, gaps),
        }

    def add(self, shipments: Sequence[Shipment]) -> int:
        """Store shipments; one already known (same carrier and number) is left untouched."""
        rows = [self.row(s) for s in shipments]
        with self.store.begin() as uow:
            known = uow.parcels_by_keys((r["carrier"], r["tracking_no"]) for r in rows)
            uow.insert_parcels(rows)
        added = len({(r["carrier"], r["tracking_no"]) for r in rows} - set(known))
        log.info("shipments.added", added=added, repeated=len(rows) - added)
        return added
