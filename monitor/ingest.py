"""Ingest carrier events: store each once, fold them into parcel state, re-arm deadlines.

A batch costs a handful of statements whatever its size: one lookup of the parcels, one
``INSERT … ON CONFLICT DO NOTHING`` of the events, one executemany update of the parcels
that changed. Duplicates change nothing, so a retried batch is harmless.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from carriers.model import TrackingEvent
from monitor.clock import Clock
from monitor.logging import mask_phone_numbers
from monitor.norms.estimate import promised_by_norm
from monitor.norms.model import NormBook
from monitor.rules.engine import Change, state_of
from monitor.rules.ruleset import RuleSet
from monitor.rules.timeline import ParcelState, Schedule, deadlines, fold
from monitor.store.store import UnitOfWork

log = structlog.get_logger("monitor.ingest")


def fingerprint(ev: TrackingEvent) -> str:
    """Identify an event by what the carrier said, so a repeat is stored once."""
    key = "\x1f".join((ev.time.isoformat(), ev.status or "", ev.raw_code, ev.raw_text, ev.location))
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _tally_unknown(
    unknown: dict[tuple[str, str], dict[str, Any]], ev: TrackingEvent, last_event_at: datetime | None, now: datetime
) -> None:
    """Add an event of an unknown code to the batch's tally (one ``unknown_code`` upsert row per code).

    Carriers repeat a parcel's whole timeline on every poll, so only a scan newer than the
    parcel's last one counts; a repeat still marks the code as seen now.
    """
    code = ev.raw_code[:32]
    row = unknown.setdefault((ev.carrier, code), {"carrier": ev.carrier, "code": code, "seen": now, "count": 0})
    row["count"] += last_event_at is None or ev.time > last_event_at
    row["text_sample"] = mask_phone_numbers(ev.raw_text)[:80]


@dataclass
class IngestResult:
    """What one batch did."""

    received: int = 0
    unknown_parcel: int = 0
    unknown_code: int = 0
    changes: tuple[Change, ...] = ()


class Ingestor:
    """Apply batches of normalized events to the store."""

    def __init__(self, rules: RuleSet, clock: Clock, norms: NormBook | None = None) -> None:
        """``norms``: the learned route norms, in memory (they arm ``slow_for_route``); None: fixed lines only."""
        self.rules = rules
        self.clock = clock
        self.norms = norms
        self._codes_logged: set[tuple[str, str]] = set()

    def apply(self, uow: UnitOfWork, events: Sequence[TrackingEvent]) -> IngestResult:
        """Store ``events`` and update their parcels; return the parcels whose state moved."""
        result = IngestResult(received=len(events))
        if not events:
            return result
        now = self.clock.now()
        parcels = uow.parcels_by_keys(((e.carrier, e.tracking_no) for e in events), for_update=True)
        grouped: dict[int, list[TrackingEvent]] = defaultdict(list)
        rows: list[dict[str, Any]] = []
        seen: set[tuple[int, str]] = set()
        unknown: dict[tuple[str, str], dict[str, Any]] = {}  # (carrier, code) → one upsert row for the batch
        for ev in events:
            parcel = parcels.get((ev.carrier, ev.tracking_no))
            if parcel is None:
                result.unknown_parcel += 1
                continue
            key = (parcel.id, fingerprint(ev))
            if key in seen:  # repeated within the batch: nothing new to store or fold
                continue
            seen.add(key)
            if ev.status is None:
                result.unknown_code += 1
                self._log_unknown_code(ev)
                _tally_unknown(unknown, ev, parcel.last_event_at, now)
            grouped[parcel.id].append(ev)
            rows.append(
                {
                    "parcel_id": parcel.id,
                    "fingerprint": key[1],
                    "time": ev.time,
                    "status": ev.status.value if ev.status else None,
                    "reason": ev.reason.value if ev.reason else None,
                    "raw_code": ev.raw_code[:32],
                    "raw_text": mask_phone_numbers(ev.raw_text)[:512],  # couriers write the buyer's number in
                    "location": ev.location[:128],
                    "received_at": now,
                }
            )
        if result.unknown_parcel:
            log.warning("ingest.unknown_parcel", events=result.unknown_parcel)
        uow.insert_events(rows)
        uow.note_unknown_codes(list(unknown.values()))  # the 快递公司 page shows them (one statement per batch)
        by_id = {p.id: p for p in parcels.values()}
        changes: list[Change] = []
        updates: list[dict[str, Any]] = []
        for parcel_id, evs in grouped.items():
            parcel = by_id[parcel_id]
            old = state_of(parcel)
            new = fold(old, evs)
            if new == old:
                continue
            changes.append(Change(parcel, old, new))
            updates.append({"id": parcel_id, "updated_at": now, **self.columns(parcel, new)})
        uow.update_parcels(updates)
        result.changes = tuple(changes)
        return result

    def columns(self, parcel: Any, state: ParcelState, held: bool | None = None) -> dict[str, Any]:
        """Return the state and deadline columns of a parcel in ``state``."""
        held = parcel.held if held is None else held
        route = (parcel.carrier, parcel.origin_province, parcel.destination_province, parcel.region_class)
        promised = parcel.promised_delivery
        if promised is None and self.norms is not None:
            promised = promised_by_norm(self.norms, parcel.shipped_at, *route)
        schedule = Schedule(parcel.shipped_at, parcel.pickup_deadline, promised, parcel.region_class, held)
        t = self.rules.thresholds(parcel.carrier, parcel.shop)
        gaps = self.norms.gaps(*route) if self.norms is not None else None
        return {
            "status": state.status,
            "status_code": state.status_code,
            "exception_reason": state.exception_reason,
            "last_event_at": state.last_event_at,
            "picked_up_at": state.picked_up_at,
            "delivered_at": state.delivered_at,
            **deadlines(state, schedule, t, gaps),
        }

    def _log_unknown_code(self, ev: TrackingEvent) -> None:
        key = (ev.carrier, ev.raw_code)
        if key not in self._codes_logged:
            self._codes_logged.add(key)
            log.warning("ingest.unknown_code", carrier=ev.carrier, code=ev.raw_code,
                        text=mask_phone_numbers(ev.raw_text)[:80])  # fmt: skip
