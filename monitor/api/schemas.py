"""Request and response documents of the API, with the examples the OpenAPI page shows.

Responses are built from store rows by the ``of`` class methods. Money goes out in yuan as a
number with two decimals, like the outgoing webhook; times as ISO 8601 in UTC. No model has
a field for a buyer's name, phone number or address, because the store keeps none.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from carriers.model import Status
from monitor.actions.intercepts import REFUND_TYPES
from monitor.logging import mask_phone_numbers
from monitor.rules.ruleset import RULE_IDS
from monitor.tickets.model import OUTCOME_LABELS

RuleId = StrEnum("RuleId", {rule: rule for rule in RULE_IDS})  # type: ignore[misc]
INTERCEPT_STATES = (
    "held", "requested", "pending", "accepted", "rejected", "succeeded", "failed", "skipped", "joined",
)  # fmt: skip
InterceptState = StrEnum("InterceptState", {s: s for s in INTERCEPT_STATES})  # type: ignore[misc]
AnomalyFilter = Literal["open", "acknowledged", "resolved", "active"]
RefundType = Literal[REFUND_TYPES]  # type: ignore[valid-type]
T = TypeVar("T")


#: Text with something besides spaces and no NUL (PostgreSQL refuses NUL in text), as ids must be.
WORD = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
#: Shipment times: years 2000 to 2100 (beyond, zone conversion and deadline arithmetic overflow).
YEARS = r"^(20[0-9]{2}|2100)-"


def yuan(fen: int | None) -> float | None:
    """Return an amount in fen as yuan with two decimals."""
    return None if fen is None else round(fen / 100, 2)


# -- errors ---------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong, for a program (``code``, ``field``) and for a person (``message``)."""

    code: str = Field(description="Stable machine-readable code.", examples=["invalid_field"])
    message: str = Field(examples=["time without an offset: '2026-11-11 09:00' (write e.g. +08:00)"])
    field: str | None = Field(None, description="The bad part of the request.", examples=["shipments[3].shipped_at"])
    value: Any = Field(None, description="The bad value, when short.", examples=["2026-11-11 09:00"])
    allowed: list[str] | None = Field(None, description="Accepted values, where there is a list.")


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document the error answers of a route."""
    return {status: {"model": ErrorBody} for status in statuses}


# -- shipments ------------------------------------------------------------------------------


class ShipmentIn(BaseModel):
    """One parcel an order was shipped in (validated by ``Shipment.parse``; documented here)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "order_id": "TB20261111000098",
                    "carrier": "kuaidi100",
                    "tracking_no": "ZT7800000000003",
                    "shipped_at": "2026-11-11T09:30:00+08:00",
                    "shop": "旗舰店",
                    "origin_province": "浙江",
                    "destination_province": "河南",
                    "amount": "162.10",
                }
            ]
        },
    )

    order_id: str = Field(max_length=64, pattern=WORD, description="The shop's order id.")
    carrier: str = Field(
        max_length=32, pattern=WORD, description="Carrier code of a configured adapter, e.g. `kuaidi100`, `sf`."
    )
    tracking_no: str = Field(max_length=64, pattern=WORD, description="The carrier's tracking number.")
    shipped_at: datetime = Field(
        description="When the tracking number was uploaded, ISO 8601 with an offset, years 2000–2100.",
        json_schema_extra={"pattern": YEARS},
    )
    pickup_deadline: datetime | None = Field(
        None, description="Own pickup deadline; default shipped_at + 24 h.", json_schema_extra={"pattern": YEARS}
    )
    promised_delivery: datetime | None = Field(
        None, description="Promised delivery time, if any.", json_schema_extra={"pattern": YEARS}
    )
    presale: bool = Field(False, description="Presale order (longer pickup allowance).")
    shop: str = Field("", max_length=64, pattern=NO_NUL, description="Shop name; thresholds can differ per shop.")
    origin_province: str | None = Field(None, description="Province shipped from, e.g. `浙江` or `浙江省`.")
    destination_province: str | None = Field(None, description="Province shipped to; picks the stall threshold.")
    amount: str | float | None = Field(
        None,
        description="Order amount in yuan (text or number), 0 to 21,474,836.47, for compensation.",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,7}(\.[0-9]{1,2})?$"},
                {"type": "number", "minimum": 0, "maximum": 21474836.47},
                {"type": "null"},
            ]
        },
    )


class ShipmentBatchIn(BaseModel):
    """Up to 10,000 shipments in one request: all are stored, or none if any is invalid."""

    model_config = ConfigDict(extra="forbid")

    shipments: list[ShipmentIn] = Field(max_length=10_000)


class ShipmentsReceived(BaseModel):
    """How many shipments came, how many were new and how many were known already."""

    received: int = Field(examples=[3])
    created: int = Field(examples=[2])
    existing: int = Field(examples=[1])


# -- refunds --------------------------------------------------------------------------------


class RefundIn(BaseModel):
    """A buyer's refund request, as the platform or ERP reports it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"refund_id": "RF20261112000088", "order_id": "TB20261111000088", "type": "refund_only"}]
        },
    )

    refund_id: str = Field(min_length=1, max_length=64, description="The platform's refund id; a repeat is ignored.")
    order_id: str = Field(min_length=1, max_length=64, description="The order the refund is for.")
    type: RefundType = Field(  # type: ignore[valid-type]
        description="`refund_only` (仅退款) intercepts; `return_and_refund` (退货退款) is recorded only."
    )


class DecisionOut(BaseModel):
    """What was decided for one parcel of the order."""

    carrier: str = Field(examples=["sandbox"])
    tracking_no: str = Field(examples=["SBX1808700088"])
    decision: str = Field(
        description="held | intercept_requested | joined | skipped; a repeated refund_id answers the state now: "
        "pending | accepted | rejected | failed | succeeded",
        examples=["intercept_requested"],
    )
    reason: str = Field(examples=[""])


class RefundOut(BaseModel):
    """The refund as recorded and what it led to, per parcel."""

    refund_id: str
    order_id: str
    type: str
    repeated: bool = Field(description="True if this refund id was received before; nothing new was done.")
    decisions: list[DecisionOut]
    message: str = Field(examples=["intercept accepted by the carrier for 1 parcel"])


# -- parcels --------------------------------------------------------------------------------


class ParcelRefOut(BaseModel):
    """The keys of a parcel, as list items carry them."""

    carrier: str = Field(examples=["kuaidi100"])
    tracking_no: str = Field(examples=["ZT7800000000003"])
    order_id: str = Field(examples=["TB20261111000098"])
    shop: str = Field(examples=["旗舰店"])

    @classmethod
    def of(cls, row: Any) -> ParcelRefOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        return cls(carrier=row.carrier, tracking_no=row.tracking_no, order_id=row.order_id, shop=row.shop)


class ParcelOut(BaseModel):
    """One parcel: what the merchant said and where the carrier says it is."""

    id: int
    carrier: str
    tracking_no: str
    order_id: str
    shop: str
    status: str = Field(description="Normalized status: " + ", ".join(s.value for s in Status), examples=["in_transit"])
    status_code: str = Field(description="The carrier's own code of the last status.", examples=["0"])
    exception_reason: str | None = None
    shipped_at: datetime
    pickup_deadline: datetime
    promised_delivery: datetime | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    last_event_at: datetime | None
    presale: bool
    held: bool = Field(description="Shipment held because of a refund before pickup.")
    intercept_state: str | None
    origin_province: str | None
    destination_province: str | None
    region_class: str
    amount: float | None = Field(description="Order amount in yuan.", examples=[162.1])
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> ParcelOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "amount"}
        return cls(**fields, amount=yuan(row.amount_fen))


class EventOut(BaseModel):
    """One carrier scan, normalized, with the carrier's own code and text."""

    time: datetime
    status: str | None = Field(description="Normalized status; null when the carrier's code is unknown to us.")
    reason: str | None
    raw_code: str = Field(examples=["301"])
    raw_text: str = Field(description="Carrier text; mobile numbers are masked.", examples=["【郑州市】快件已签收"])
    location: str
    received_at: datetime

    @classmethod
    def of(cls, row: Any) -> EventOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        return cls(
            time=row.time,
            status=row.status,
            reason=row.reason,
            raw_code=row.raw_code,
            raw_text=mask_phone_numbers(row.raw_text),
            location=mask_phone_numbers(row.location),
            received_at=row.received_at,
        )


class AnomalyOut(BaseModel):
    """A rule that fired for a parcel: open → acknowledged → resolved."""

    id: int = Field(examples=[17])
    rule: str = Field(examples=["pickup_overdue"])
    severity: str = Field(examples=["critical"])
    state: str = Field(examples=["open"])
    compensation: float | None = Field(description="Compensation at stake in yuan, if known.", examples=[16.21])
    detail: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    parcel: ParcelRefOut

    @classmethod
    def of(cls, row: Any) -> AnomalyOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        return cls(
            id=row.id,
            rule=row.rule,
            severity=row.severity,
            state=row.state,
            compensation=yuan(row.compensation_fen),
            detail=row.detail,
            opened_at=row.opened_at,
            acknowledged_at=row.acknowledged_at,
            resolved_at=row.resolved_at,
            resolution=row.resolution,
            parcel=ParcelRefOut.of(row),
        )


class ResolveIn(BaseModel):
    """How an anomaly was closed by hand."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"resolution": "reshipped"}]})

    resolution: str = Field("manual", min_length=1, max_length=32, description="Short word for how it ended.")


TICKET_STATES = ("open", "processing", "done", "cancelled", "reopened")
TicketStateIn = StrEnum("TicketStateIn", {s: s for s in TICKET_STATES})  # type: ignore[misc]
TicketFilter = Literal["open", "processing", "done", "cancelled", "reopened", "active"]
OUTCOMES = ("chased", "reshipped", "buyer_contacted", "claim_filed", "nothing_needed")
OutcomeIn = StrEnum("OutcomeIn", {o: o for o in OUTCOMES})  # type: ignore[misc]
#: A login as accounts have them (``monitor.people.model.LOGIN``), in any case.
LOGIN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
#: A team name as ``[tickets] teams`` allows it.
TEAM = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Most tickets one bulk call changes.
MAX_BULK = 500


class TicketOut(BaseModel):
    """A ticket for ops staff or the warehouse: who has it, how much is at stake, where it is in its life."""

    id: int
    rule: str = Field(description="The rule that opened it, or `refund` for a held shipment.", examples=["refund"])
    title: str
    state: str = Field(description=" | ".join(TICKET_STATES), examples=["processing"])
    assignee: str | None = Field(description="Login of the person who has it; null: unassigned.", examples=["li.lei"])
    team: str | None = Field(description="The team whose queue it is in.", examples=["ops"])
    stake: float | None = Field(
        description="Money at stake in yuan: the anomaly's compensation, else the order amount.", examples=[12.5]
    )
    due_at: datetime | None = Field(description="When it should be handled by (the rule's SLA).")
    outcome: str | None = Field(description=" | ".join(OUTCOMES) + " (when done by a person)", examples=["chased"])
    outcome_label: str | None = Field(description="The outcome as ops staff say it.", examples=["已催件"])
    note: str
    close_reason: str | None = Field(examples=["auto: anomaly resolved (auto)"])
    closed_at: datetime | None
    reopened_count: int
    anomaly_id: int | None
    refund_id: str | None
    created_at: datetime
    updated_at: datetime
    parcel: ParcelRefOut

    @classmethod
    def of(cls, row: Any) -> TicketOut:
        """Build from a ``views`` ticket row (its columns, its parcel's keys, ``assignee_login``)."""
        return cls(
            id=row.id,
            rule=row.rule,
            title=row.title,
            state=row.state,
            assignee=row.assignee_login,
            team=row.team,
            stake=yuan(row.stake_fen),
            due_at=row.due_at,
            outcome=row.outcome,
            outcome_label=OUTCOME_LABELS.get(row.outcome) if row.outcome else None,
            note=row.note,
            close_reason=row.close_reason,
            closed_at=row.closed_at,
            reopened_count=row.reopened_count,
            anomaly_id=row.anomaly_id,
            refund_id=row.refund_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            parcel=ParcelRefOut.of(row),
        )


class TicketEventOut(BaseModel):
    """One change to a ticket (who, when, from → to), or a comment."""

    id: int = Field(description="Never reused: an external sink's event id derives from it.")
    ticket_id: int
    at: datetime
    actor: str = Field(description="The login of who did it; `rules` or `system` for the monitor itself.")
    kind: str = Field(
        description="opened | assigned | state | outcome | comment | reopened | auto_closed | overdue | escalated "
        "| reshipped",
        examples=["state"],
    )
    from_value: str | None = Field(description="Before (`team:NAME` for a team).", examples=["open"])
    to_value: str | None = Field(description="After.", examples=["processing"])
    body: str = Field(description="Comment text or the note.")

    @classmethod
    def of(cls, row: Any) -> TicketEventOut:
        """Build from a ``ticket_event`` row."""
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            at=row.at,
            actor=row.actor,
            kind=row.kind,
            from_value=row.from_value,
            to_value=row.to_value,
            body=row.body,
        )


class TicketDetail(TicketOut):
    """A ticket with its whole history, oldest first."""

    events: list[TicketEventOut]


class TicketPatchIn(BaseModel):
    """What to change on a ticket; send only the fields to change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"assignee": "li.lei"},
                {"state": "done", "outcome": "chased", "note": "催了快递员, 明天派送"},
                {"state": "cancelled"},
                {"outcome": "reshipped", "new_carrier": "sf", "new_tracking_no": "SF1400000099999"},
            ]
        },
    )

    assignee: str | None = Field(
        None, pattern=LOGIN, description="Give it to this login (an operator or admin); null: unassign."
    )
    team: str | None = Field(None, pattern=TEAM, description="Put it in a configured team's queue; null: no team.")
    state: TicketStateIn | None = Field(None, description="The new state; done needs an outcome.")
    outcome: OutcomeIn | None = Field(
        None, description="How it ended (已催件 已补发 已联系买家 已理赔 无需处理); alone on an open ticket, closes it."
    )
    note: str | None = Field(None, max_length=1000, pattern=NO_NUL, description="Free note (up to 1,000 characters).")
    new_carrier: str | None = Field(
        None, max_length=32, pattern=NO_NUL, description="With outcome `reshipped` (已补发): the replacement's carrier."
    )
    new_tracking_no: str | None = Field(
        None,
        max_length=64,
        pattern=NO_NUL,
        description="With outcome `reshipped`: the replacement's tracking number; it is watched like any shipment.",
    )


class CommentIn(BaseModel):
    """A free comment on a ticket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"body": "已联系快递员, 等回复"}]})

    body: str = Field(min_length=1, max_length=2000, pattern=WORD, description="1–2,000 characters.")


class TicketBulkIn(TicketPatchIn):
    """One change to up to 500 tickets, all or nothing."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"ids": [17, 18, 19], "assignee": "han.meimei"}, {"ids": [17, 18], "state": "cancelled"}]
        },
    )

    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        min_length=1, max_length=MAX_BULK, description=f"1–{MAX_BULK} ticket ids, each at most once."
    )


class BulkOut(BaseModel):
    """What a bulk call did."""

    changed: int = Field(description="Tickets changed (one already as asked is not counted).", examples=[3])
    tickets: list[TicketOut]


class TicketPage(BaseModel):
    """One page of the ticket queue: most money at stake first, then oldest first."""

    items: list[TicketOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class InterceptOut(BaseModel):
    """Stopping one parcel because of one refund-only request."""

    id: int
    refund_id: str
    state: str = Field(description=" | ".join(INTERCEPT_STATES), examples=["accepted"])
    reason: str
    requested_at: datetime
    decided_at: datetime | None
    finished_at: datetime | None
    parcel: ParcelRefOut

    @classmethod
    def of(cls, row: Any) -> InterceptOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        return cls(
            id=row.id,
            refund_id=row.refund_id,
            state=row.state,
            reason=mask_phone_numbers(row.reason),
            requested_at=row.requested_at,
            decided_at=row.decided_at,
            finished_at=row.finished_at,
            parcel=ParcelRefOut.of(row),
        )


class ActionOut(BaseModel):
    """One side effect in the durable outbox (ticket, alert, intercept call...)."""

    id: int
    kind: str = Field(examples=["intercept"])
    state: str = Field(description="pending | running | done | failed", examples=["done"])
    rule: str
    target: str
    anomaly_id: int | None
    refund_id: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    done_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> ActionOut:
        """Build from a store row (joined with its parcel's keys where the model has ``parcel``)."""
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class ActivityOut(BaseModel):
    """One thing the monitor did about the parcel (anomaly opened, intercept requested...)."""

    at: datetime
    event: str = Field(examples=["intercept_requested"])
    data: dict[str, Any]


class ParcelLink(BaseModel):
    """Another parcel of a reshipment: the one replaced, or a replacement."""

    carrier: str
    tracking_no: str
    status: str

    @classmethod
    def of(cls, row: Any) -> ParcelLink:
        return cls(carrier=row.carrier, tracking_no=row.tracking_no, status=row.status)


class EstimateOut(BaseModel):
    """When a parcel in flight should arrive: p50–p90 of its route's remaining time (``monitor.norms``)."""

    earliest: datetime = Field(description="p50 of the learned time, or now when that has passed.")
    latest: datetime = Field(description="p90 of the learned time (never before `earliest`).")
    level: str = Field(description="The norm behind it: route, region or carrier.", examples=["route"])
    phase: str = Field(description="total (from shipping) or ofd_to_delivered (from the courier's scan).")
    samples: int = Field(description="Delivered parcels behind the norm.")


class ParcelDetail(BaseModel):
    """A parcel with everything known about it."""

    parcel: ParcelOut
    estimated_delivery: EstimateOut | None = Field(
        None, description="The delivery window of a parcel in flight; null when finished or nothing is learned yet."
    )
    timeline: list[EventOut] = Field(description="Carrier scans, oldest first.")
    anomalies: list[AnomalyOut]
    tickets: list[TicketOut]
    intercepts: list[InterceptOut]
    actions: list[ActionOut]
    activity: list[ActivityOut] = Field(description="What the monitor did, oldest first.")
    ticket_events: list[TicketEventOut] = Field(
        [], description="Every change to the parcel's tickets and their comments, oldest first."
    )
    replaces: ParcelLink | None = Field(None, description="The parcel this one was reshipped to replace.")
    replaced_by: list[ParcelLink] = Field([], description="Reshipments sent to replace this parcel, oldest first.")


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

    @classmethod
    def of(cls, items: list[T], next_id: int | None) -> Page[T]:
        """Wrap one page of items; ``next_id`` is where the next page starts (None: no more)."""
        return cls(items=items, next_cursor=None if next_id is None else str(next_id))


# -- operations -----------------------------------------------------------------------------


class HealthOut(BaseModel):
    """Whether the process (``/healthz``) or the service (``/readyz``) is fit."""

    status: str = Field(examples=["ok"])
    reason: str | None = Field(None, examples=[None])
