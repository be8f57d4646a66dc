"""Ingest carrier events: store each once, fold them into parcel state, re-arm deadlines.

A batch costs a handful of statements whatever its size: one lookup of the parcels, one
``INSERT … ON CONFLICT DO NOTHING`` of the events, one executemany update of the parcels
that changed. Duplicates change nothing, so a retried batch is harmless.
"""

from __future__ import annotations

import hashlib
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
from monitor.rules.timeline import DEADLINE_COLUMNS, ParcelState, Schedule, deadlines, fold
from monitor.store.store import UnitOfWork

log = structlog.get_logger("monitor.intake.ingest")

#: What :meth:`Ingestor.columns` returns, in order: the carrier state, then every deadline.
_COLUMNS = ("status", "status_code", "exception_reason", "last_event_at", "picked_up_at", "delivered_at",
            *DEADLINE_COLUMNS)  # fmt: skip
#: The parcel columns a batch writes for each parcel whose state moved (``UnitOfWork.update_parcel_rows``).
_UPDATED = ("updated_at", *_COLUMNS)


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
        """Store ``events`` and update their parcels; return the parcels whose state moved.

        Rows go to the store as tuples in column order (events, then changed parcels), built
        in one pass each: no dict per row for the store to pick apart again, only times bound.
        """
        result = IngestResult(received=len(events))
        if not events:
            return result
        now = self.clock.now()
        with uow.looking_up_parcels(((e.carrier, e.tracking_no) for e in events), for_update=True) as parcels:
            # what each row holds but its parcel id, while PostgreSQL looks the parcels up
            tails = [
                (
                    fingerprint(ev),
                    ev.time,
                    ev.status.value if ev.status else None,
                    ev.reason.value if ev.reason else None,
                    ev.raw_code[:32],
                    mask_phone_numbers(ev.raw_text)[:512],  # couriers write the buyer's number in
                    ev.location[:128],
                    now,
                )
                for ev in events
            ]  # EVENT_COLUMNS order after parcel_id
        grouped: dict[int, tuple[Any, list[TrackingEvent]]] = {}
        rows: list[tuple[Any, ...]] = []
        seen: set[tuple[int, str]] = set()
        unknown: dict[tuple[str, str], dict[str, Any]] = {}  # (carrier, code) → one upsert row for the batch
        for ev, tail in zip(events, tails, strict=True):
            parcel = parcels.get((ev.carrier, ev.tracking_no))
            if parcel is None:
                result.unknown_parcel += 1
                continue
            parcel_id = parcel.id
            key = (parcel_id, tail[0])
            if key in seen:  # repeated within the batch: nothing new to store or fold
                continue
            seen.add(key)
            if ev.status is None:
                result.unknown_code += 1
                self._log_unknown_code(ev)
                _tally_unknown(unknown, ev, parcel.last_event_at, now)
            group = grouped.get(parcel_id)
            if group is None:
                grouped[parcel_id] = (parcel, [ev])
            else:
                group[1].append(ev)
            rows.append((parcel_id, *tail))  # in EVENT_COLUMNS order
        if result.unknown_parcel:
            log.warning("ingest.unknown_parcel", events=result.unknown_parcel)
        changes: list[Change] = []
        updates: list[tuple[Any, ...]] = []
        with uow.inserting_event_rows(rows):  # PostgreSQL inserts them while the batch is folded here
            for parcel_id, (parcel, evs) in grouped.items():
                old = state_of(parcel)
                new = fold(old, evs)
                if new == old:
                    continue
                changes.append(Change(parcel, old, new))
                updates.append((parcel_id, now, *self._values(parcel, new, parcel.held)))
        uow.note_unknown_codes(list(unknown.values()))  # the 快递公司 page shows them (one statement per batch)
        uow.update_parcel_rows(_UPDATED, updates)
        result.changes = tuple(changes)
        return result

    def columns(self, parcel: Any, state: ParcelState, held: bool | None = None) -> dict[str, Any]:
        """Return the state and deadline columns of a parcel in ``state``."""
        return dict(zip(_COLUMNS, self._values(parcel, state, parcel.held if held is None else held), strict=True))

    def _values(self, parcel: Any, state: ParcelState, held: bool) -> tuple[Any, ...]:
        """Return the values of :data:`_COLUMNS` for a parcel in ``state``."""
        carrier, region = parcel.carrier, parcel.region_class
        promised = parcel.promised_delivery
        norms = self.norms
        gaps = None
        if norms is not None:
            origin, dest = parcel.origin_province, parcel.destination_province
            if promised is None:
                promised = promised_by_norm(norms, parcel.shipped_at, carrier, origin, dest, region)
            gaps = norms.gaps(carrier, origin, dest, region)
        schedule = Schedule(parcel.shipped_at, parcel.pickup_deadline, promised, region, held)
        due = deadlines(state, schedule, self.rules.thresholds(carrier, parcel.shop), gaps)
        return (
            state.status,
            state.status_code,
            state.exception_reason,
            state.last_event_at,
            state.picked_up_at,
            state.delivered_at,
            *due.values(),  # DEADLINE_COLUMNS order
        )

    def _log_unknown_code(self, ev: TrackingEvent) -> None:
        key = (ev.carrier, ev.raw_code)
        if key not in self._codes_logged:
            self._codes_logged.add(key)
            log.warning("ingest.unknown_code", carrier=ev.carrier, code=ev.raw_code,
                        text=mask_phone_numbers(ev.raw_text)[:80])  # fmt: skip
