"""The normalized tracking model every adapter maps its carrier's payloads onto.

The carrier's own code and text stay on every event, so nothing is lost in translation
and an unknown code can be kept (with ``status=None``) rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """Where a parcel is, in one vocabulary shared by every carrier."""

    PENDING = "pending"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"


class ExceptionReason(StrEnum):
    """Why a parcel is a problem parcel (疑难件/问题件)."""

    ADDRESS = "address"
    DAMAGED = "damaged"
    LOST = "lost"
    REFUSED = "refused"
    CUSTOMS = "customs"
    WEATHER = "weather"
    OTHER = "other"


#: Statuses after which a parcel needs no more tracking.
TERMINAL_STATUSES = frozenset({Status.DELIVERED, Status.RETURNED})
#: Statuses that mean the parcel is on its way back to the sender.
RETURN_STATUSES = frozenset({Status.RETURNING, Status.RETURNED})


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One carrier scan, normalized, with the carrier's own code and text kept beside it.

    ``time`` must be timezone-aware; adapters parse it in the carrier's own zone.
    ``status`` is ``None`` when the carrier's code is not in the adapter's table.
    """

    carrier: str
    tracking_no: str
    time: datetime
    status: Status | None
    raw_code: str = ""
    raw_text: str = ""
    location: str = ""
    reason: ExceptionReason | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"TrackingEvent.time must be timezone-aware, got {self.time!r}")
        if self.reason is not None and self.status is not Status.EXCEPTION:
            raise ValueError(f"reason={self.reason!r} is only valid with status 'exception'")


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """What a carrier said about one tracking number.

    A number the carrier does not know is a ``problem`` here, not an exception, so one bad
    number never fails a batch.
    """

    carrier: str
    tracking_no: str
    events: tuple[TrackingEvent, ...] = ()
    problem: str | None = None
    problem_code: str = ""


@dataclass(frozen=True, slots=True)
class ParcelRef:
    """What an adapter needs to know to act on a parcel (e.g. to intercept it)."""

    carrier: str
    tracking_no: str
    order_id: str = ""
    shop: str = ""


@dataclass(frozen=True, slots=True)
class InterceptResult:
    """The carrier's answer to an intercept request.

    ``accepted`` is ``False`` only for the carrier's explicit refusal. It is ``None`` while the
    carrier has not decided yet (the verdict arrives later, through a push, a status query or
    the parcel's next scans), and for a *repeated* request (SF A1007): the first request with
    that idempotency key arrived, and its verdict is not in this answer. An answer that cannot
    be read is no result at all: the adapter raises ``CarrierResponseError``.
    """

    accepted: bool | None
    reason: str = ""
    raw_code: str = ""
    carrier_ref: str = ""
    #: The carrier had seen this idempotency key before (its answer to the first request is unknown).
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard an adapter may be driven."""

    batch_size: int = 1
    requests_per_second: float = 10.0
    #: Most queries of one number the carrier allows in 24 h (None: no cap).
    max_queries_per_number_per_day: int | None = None
    extra: dict[str, int] = field(default_factory=dict)
