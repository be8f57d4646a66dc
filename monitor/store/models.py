"""The tables. The store (``monitor.store.store``) is the only module that queries them.

Time-driven rules are evaluated over the ``*_due`` columns: each holds the moment a rule
fires for that parcel, or NULL when it is not armed, so a sweep is an index range scan
over due rows, never a loop over every parcel.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from monitor.store.types import UTCDateTime

ACTIVE_ANOMALY = text("state != 'resolved'")
#: Parcels still followed (not delivered, not back with the sender): the 快递公司 page counts them per carrier.
WATCHED_PARCEL = text("status NOT IN ('delivered', 'returned')")
REPEATING = text("repeat_due_at IS NOT NULL")
#: Deadline columns indexed only where armed on PostgreSQL (migration 0013): a swept parcel's new row version
#: adds no entry to the index of a column it clears, and the indexes hold the armed rows, not a million NULLs.
#: SQLite keeps full indexes, which its ``MIN(column)`` (the next due moment) needs.
PARTIAL_DEADLINES = ("pickup_risk_due", "pickup_due", "stall_due", "lost_due", "delivery_due")
#: Also partial on PostgreSQL (migration 0019): most parcels have neither, and a NULL entry is one more
#: index insertion for every new row version of every parcel.
PARTIAL_ON_POSTGRESQL = (*PARTIAL_DEADLINES, "slow_due", "replaces_parcel_id")
#: The poll claim's "at risk" parcels, each found through a small partial index (migration 0013).
PENDING_PICKUP = text("picked_up_at IS NULL")
HAS_INTERCEPT = text("intercept_state IS NOT NULL")
#: Delivered parcels, indexed by day for the 指标 page's live count of today (migration 0014).
DELIVERED = text("delivered_at IS NOT NULL")


class Parcel(SQLModel, table=True):
    """One shipped parcel: what the merchant told us, what the carrier said, what is due."""

    __table_args__ = (
        UniqueConstraint("carrier", "tracking_no", name="uq_parcel_carrier_tracking"),
        Index("ix_parcel_watched_carrier", "carrier", sqlite_where=WATCHED_PARCEL, postgresql_where=WATCHED_PARCEL),
        *(Index(f"ix_parcel_{c}", c, postgresql_where=text(f"{c} IS NOT NULL")) for c in PARTIAL_ON_POSTGRESQL),
        Index(
            "ix_parcel_pending_pickup",
            "carrier",
            "pickup_deadline",
            sqlite_where=PENDING_PICKUP,
            postgresql_where=PENDING_PICKUP,
        ),
        Index(
            "ix_parcel_intercept_state", "intercept_state", sqlite_where=HAS_INTERCEPT, postgresql_where=HAS_INTERCEPT
        ),
        # the shipped and pickup days are indexed in parcel_day (ParcelDay, migration 0019); delivered parcels here
        Index(
            "ix_parcel_delivered_day",
            "delivered_at",
            "shop",
            "carrier",
            sqlite_where=DELIVERED,
            postgresql_where=DELIVERED,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    carrier: str = Field(max_length=32)
    tracking_no: str = Field(max_length=64)
    order_id: str = Field(max_length=64, index=True)
    shop: str = Field(default="", max_length=64)
    shipped_at: datetime = Field(sa_type=UTCDateTime)
    #: Indexed: the pickup-rate forecast reads the parcels whose deadline is still ahead (``monitor.kpi``).
    pickup_deadline: datetime = Field(sa_type=UTCDateTime)  # indexed in parcel_day (ix_parcel_day_pickup)
    promised_delivery: datetime | None = Field(default=None, sa_type=UTCDateTime)
    presale: bool = False
    origin_province: str | None = Field(default=None, max_length=16)
    destination_province: str | None = Field(default=None, max_length=16)
    region_class: str = Field(default="cross_province", max_length=16)
    amount_fen: int | None = None

    status: str = Field(default="pending", max_length=24, index=True)
    status_code: str = Field(default="", max_length=32)
    exception_reason: str | None = Field(default=None, max_length=16)
    last_event_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    picked_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    held: bool = False
    intercept_state: str | None = Field(default=None, max_length=16)

    pickup_risk_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    pickup_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    stall_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    lost_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    delivery_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    #: slow_for_route: the last scan plus the route's learned gap, when that comes before the fixed stall line.
    slow_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # indexed in __table_args__
    next_poll_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    #: When the carrier was last asked about this parcel (the per-number cap is spacing from it).
    last_polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: How far the poll back-off has gone while nothing changed (0: the first step).
    poll_step: int = 0
    #: The parcel this one was sent to replace (a reshipment, ``monitor.tickets.reshipment``).
    replaces_parcel_id: int | None = Field(default=None, foreign_key="parcel.id")  # indexed in __table_args__

    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ParcelDay(SQLModel, table=True):
    """A parcel's shipped and pickup days, for the 指标 page's live counts and the pickup forecast.

    Kept by triggers on ``parcel`` (migration 0019), never written by the code. Why a table of
    its own: every carrier scan rewrites its parcel's row (status, deadlines), and on
    PostgreSQL each new row version adds an entry to every index of ``parcel``; the two
    covering day indexes were the largest of them (B2: half the time of ingest's parcel
    update at 1M parcels). Here a row changes only when the parcel is picked up or held.
    """

    __tablename__ = "parcel_day"
    __table_args__ = (
        Index("ix_parcel_day_shipped", "shipped_at", "shop", "carrier"),
        Index("ix_parcel_day_pickup", "pickup_deadline", "shop", "carrier", "held", "picked_up_at"),
    )

    parcel_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    shop: str = Field(max_length=64)
    carrier: str = Field(max_length=32)
    shipped_at: datetime = Field(sa_type=UTCDateTime)
    pickup_deadline: datetime = Field(sa_type=UTCDateTime)
    held: bool
    picked_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TrackingEventRow(SQLModel, table=True):
    """One carrier scan, stored once however often the carrier repeats it."""

    __tablename__ = "tracking_event"
    __table_args__ = (
        UniqueConstraint("parcel_id", "fingerprint", name="uq_event_fingerprint"),
        # each parcel's scans in time order, covering: route-norm learning's window reads it unsorted (0015)
        Index("ix_event_parcel_time", "parcel_id", "time", "id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    parcel_id: int = Field(foreign_key="parcel.id")  # indexed by uq_event_fingerprint
    fingerprint: str = Field(max_length=32)
    time: datetime = Field(sa_type=UTCDateTime)
    status: str | None = Field(default=None, max_length=24)
    reason: str | None = Field(default=None, max_length=16)
    raw_code: str = Field(default="", max_length=32)
    raw_text: str = Field(default="", max_length=512)
    location: str = Field(default="", max_length=128)
    received_at: datetime = Field(sa_type=UTCDateTime)


class Anomaly(SQLModel, table=True):
    """A rule that fired for a parcel: open → acknowledged → resolved."""

    __table_args__ = (
        Index(
            "uq_anomaly_active",
            "parcel_id",
            "rule",
            unique=True,
            sqlite_where=ACTIVE_ANOMALY,
            postgresql_where=ACTIVE_ANOMALY,
        ),
        Index("ix_anomaly_state_rule", "state", "rule"),
        Index("ix_anomaly_opened_at", "opened_at"),  # the 指标 page's anomalies opened today (migration 0014)
    )

    id: int | None = Field(default=None, primary_key=True)
    parcel_id: int = Field(foreign_key="parcel.id", index=True)
    rule: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    state: str = Field(default="open", max_length=16)
    compensation_fen: int | None = None
    detail: str = Field(default="", max_length=256)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, max_length=32)


class Ticket(SQLModel, table=True):
    """An internal ticket for ops staff or the warehouse: open → processing → done | cancelled, reopened.

    ``shop`` and ``carrier`` are copied from the parcel and ``stake_fen`` (the anomaly's
    compensation, else the order amount) is what the queue sorts by (``monitor.tickets``).
    """

    __table_args__ = (
        Index("ix_ticket_assignee_state_stake", "assignee_id", "state", "stake_fen"),
        Index("ix_ticket_state_due", "state", "due_at"),
        Index("ix_ticket_team_state", "team", "state"),
        Index("ix_ticket_anomaly", "anomaly_id", "state"),  # an anomaly's tickets when it resolves (migration 0020)
        # the queue in stake order, read in order and stopped at the page; filters read from it (migration 0014)
        Index("ix_ticket_queue", "stake_fen", "id", "state", "rule", "carrier", "shop", "assignee_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    parcel_id: int = Field(foreign_key="parcel.id", index=True)
    anomaly_id: int | None = Field(default=None, foreign_key="anomaly.id")
    refund_id: str | None = Field(default=None, max_length=64)
    rule: str = Field(max_length=32)
    title: str = Field(max_length=256)
    state: str = Field(default="open", max_length=16)  # open | processing | done | cancelled | reopened
    created_at: datetime = Field(sa_type=UTCDateTime)
    assignee_id: int | None = Field(default=None, foreign_key="account.id")
    team: str | None = Field(default=None, max_length=64)
    shop: str = Field(default="", max_length=64)
    carrier: str = Field(default="", max_length=32)
    stake_fen: int | None = None
    #: The SLA deadline (``monitor.tickets.sla``); NULL when the rule has none.
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    overdue_alerted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: chased | reshipped | buyer_contacted | claim_filed | nothing_needed (set when done).
    outcome: str | None = Field(default=None, max_length=24)
    note: str = Field(default="", max_length=1000)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: str | None = Field(default=None, max_length=64)
    reopened_count: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Refund(SQLModel, table=True):
    """A buyer's refund request as the platform reported it."""

    id: int | None = Field(default=None, primary_key=True)
    refund_id: str = Field(max_length=64, unique=True)
    order_id: str = Field(max_length=64, index=True)
    type: str = Field(max_length=24)
    received_at: datetime = Field(sa_type=UTCDateTime)


OPEN_INTERCEPT = text("state IN ('held', 'requested', 'pending', 'accepted')")


class Intercept(SQLModel, table=True):
    """Stopping one parcel because of one refund-only request, followed to its end.

    The intercept belongs to the parcel: at most one is open (held, requested, pending, accepted)
    per parcel, and a later refund of the same order gets a ``joined`` row pointing at it.
    """

    __table_args__ = (
        UniqueConstraint("refund_id", "parcel_id", name="uq_intercept_refund_parcel"),
        Index(
            "uq_intercept_open_parcel",
            "parcel_id",
            unique=True,
            sqlite_where=OPEN_INTERCEPT,
            postgresql_where=OPEN_INTERCEPT,
        ),
        Index("ix_intercept_state_since", "state", "state_since"),
        Index("ix_intercept_state_id", "state", "id"),  # the console's 拦截 page: one state, newest first
        Index("ix_intercept_requested_at", "requested_at"),  # the 指标 page's intercepts of today (migration 0014)
        Index("ix_intercept_shop_state", "shop", "state", "id"),  # 拦截 filtered by shop (migration 0016)
        Index("ix_intercept_carrier_state", "carrier", "state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    refund_id: str = Field(max_length=64)
    parcel_id: int = Field(foreign_key="parcel.id", index=True)
    #: The parcel's shop and carrier, kept on the row (they never change) so the 拦截 filters read an index.
    shop: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    carrier: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    # held | requested | pending | accepted | rejected | succeeded | failed | skipped | joined
    state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=256)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Which carrier call of this parcel this is (the outbox key is parcel and attempt, never the refund).
    attempt: int = 1
    #: The open intercept of the parcel that a later refund joined (``state`` is then ``joined``).
    joined_to: int | None = None
    #: When the intercept entered its current state (the watchdog measures requested/pending from it).
    state_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: When the watchdog alerted about this intercept being stuck (once per intercept).
    stuck_alerted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Action(SQLModel, table=True):
    """The durable outbox: one row per side effect, claimed, done once, never lost."""

    __table_args__ = (
        Index("ix_action_due", "state", "next_attempt_at"),
        Index("ix_action_anomaly", "anomaly_id", "kind"),  # what was queued for an anomaly (the alert flush)
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    kind: str = Field(max_length=32)
    parcel_id: int = Field(foreign_key="parcel.id", index=True)
    anomaly_id: int | None = Field(default=None, foreign_key="anomaly.id")
    refund_id: str | None = Field(default=None, max_length=64, index=True)
    rule: str = Field(default="", max_length=32)
    target: str = Field(default="", max_length=64)
    state: str = Field(default="pending", max_length=16)  # pending | running | done | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=512)
    created_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Activity(SQLModel, table=True):
    """What the monitor did, in order: the parcel timeline of the API and replay's output."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    event: str = Field(max_length=32)
    parcel_id: int | None = Field(default=None, foreign_key="parcel.id", index=True)
    data: str = Field(default="{}", max_length=2048)


class Notification(SQLModel, table=True):
    """The notification log: one anomaly told (or to be told) to one receiver, firing or resolved.

    Pending rows are the queue the alert pipeline flushes group by group; sent rows are what
    a restart must not send again.
    """

    __table_args__ = (
        UniqueConstraint("anomaly_id", "receiver", "kind", name="uq_notification"),
        Index("ix_notification_due", "state", "due_at"),
        Index("ix_notification_group", "receiver", "group_key", "state", "due_at"),
        Index("ix_notification_group_sent", "receiver", "group_key", "sent_at"),
        Index("ix_notification_repeat", "repeat_due_at", sqlite_where=REPEATING, postgresql_where=REPEATING),
    )

    id: int | None = Field(default=None, primary_key=True)
    anomaly_id: int = Field(foreign_key="anomaly.id", index=True)
    receiver: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # firing | resolved
    group_key: str = Field(max_length=256)
    severity: str = Field(max_length=16)
    state: str = Field(default="pending", max_length=16)  # pending | sending (leased) | sent | failed | cancelled
    due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    repeat_seconds: int | None = None
    send_resolved: bool = False
    last_error: str = Field(default="", max_length=512)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: A sent firing notice of a repeating route: when it is due again (the repeat pass reads only these).
    repeat_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CarrierUsage(SQLModel, table=True):
    """Requests made to a carrier on one local day, so a daily quota survives a restart."""

    __tablename__ = "carrier_usage"

    carrier: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)
    requests: int = 0


class CarrierHealth(SQLModel, table=True):
    """Whether a carrier answers: failing carriers are polled less and raise one alert."""

    __tablename__ = "carrier_health"

    carrier: str = Field(primary_key=True, max_length=32)
    state: str = Field(default="up", max_length=8)  # up | failing | down
    failures: int = 0
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_try_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=512)
    #: What ops staff were last told ("up" or "down"), so an alert goes out once per outage.
    alerted: str = Field(default="up", max_length=8)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    #: When a poll round or a call last went through (kept fresh to the minute, ``HealthBook.succeeded``).
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UnknownCode(SQLModel, table=True):
    """A carrier status code no mapping knows: kept (never guessed), counted, shown on the 快递公司 page.

    Upserted once per ingest batch; ``text_sample`` is the carrier's text of the latest one seen
    (phone numbers masked, at most 80 characters).
    """

    __tablename__ = "unknown_code"

    carrier: str = Field(primary_key=True, max_length=32)
    code: str = Field(primary_key=True, max_length=32)
    text_sample: str = Field(default="", max_length=80)
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    count: int = 0


class KpiDaily(SQLModel, table=True):
    """One local day's figures for one shop and carrier, kept after the parcels behind them are purged.

    Each figure counts what happened on that day: shipments shipped, pickups that fell due,
    deliveries, anomalies opened, intercepts requested (see ``monitor.store.kpi``).
    """

    __tablename__ = "kpi_daily"

    day: date = Field(primary_key=True)
    shop: str = Field(primary_key=True, max_length=64)
    carrier: str = Field(primary_key=True, max_length=32)
    shipped: int = 0
    pickup_due: int = 0
    picked_up_in_time: int = 0
    delivered: int = 0
    #: JSON: {rule: {"opened", "open", "acknowledged", "resolved", "compensation_fen"}}.
    anomalies_opened: str = Field(default="{}", sa_type=Text)
    intercepts_requested: int = 0
    intercepts_succeeded: int = 0
    intercepts_failed: int = 0
    intercepts_held: int = 0
    intercepts_skipped: int = 0
    #: Seconds from refund request to the carrier's answer: JSON durations (monitor/store/durations.py: the list
    #: while ≤ 64 values, else a 2 % log histogram).
    intercept_latencies: str = Field(default="[]", sa_type=Text)
    #: JSON: {rule: {"opened", "closed", "went_overdue", "close_seconds": durations, "outcomes": {outcome: n}}}.
    ticket_figures: str = Field(default="{}", sa_type=Text)
    rolled_up_at: datetime = Field(sa_type=UTCDateTime)
    #: Set when a purge deleted parcels counted here: the rollup never rewrites the row again.
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PickupForecast(SQLModel, table=True):
    """A shop's latest pickup-rate forecast against its target, and what ops staff were last told.

    ``alerted`` moves (by a conditional update) only when an alert went out, so the
    ``pickup_rate_forecast`` alert is sent once per crossing and resolved once (``monitor.kpi.watch``).
    """

    __tablename__ = "pickup_forecast"

    shop: str = Field(primary_key=True, max_length=64)
    state: str = Field(default="ok", max_length=8)  # ok | below
    #: What ops staff were last told ("ok" or "below").
    alerted: str = Field(default="ok", max_length=8)
    #: The receivers that took the message ``alerted`` names, comma-separated ("*": all of them, as
    #: every row told before migration 0017): a retry sends only to the others.
    told: str = Field(default="*", max_length=256, sa_column_kwargs={"server_default": "*"})
    #: The first local day whose projected 30-day rate is below target (None when none is).
    below_day: date | None = None
    point: float | None = None
    target: float = 0.0
    #: Parcels pending now that must be picked up in time to stay at target on ``below_day``.
    needed: int | None = None
    pending: int = 0
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Account(SQLModel, table=True):
    """A person who signs in (console) or calls the API with a token of theirs (``monitor.people``).

    ``login`` is stored lower-cased, so it is unique whatever case it is typed in; the
    password is only ever an argon2id hash.
    """

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=32, unique=True)
    display_name: str = Field(max_length=64)
    #: Mainland mobile for @-mentions in DingTalk/WeCom/Feishu, or "" (never logged unmasked).
    mobile: str = Field(default="", max_length=16)
    role: str = Field(max_length=16)  # viewer | operator | admin
    disabled: bool = False
    password_hash: str = Field(max_length=256)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """An API token of one account: only its SHA-256 is kept; ``token_id`` (its first characters) finds it."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    token_id: str = Field(max_length=16, unique=True)
    token_hash: str = Field(max_length=64)
    label: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked: bool = False
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TicketEvent(SQLModel, table=True):
    """One change to a ticket (who, when, from → to) or a comment; ids are never reused (sink event ids)."""

    __tablename__ = "ticket_event"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    #: The login of the person, or ``system`` / ``rules``.
    actor: str = Field(max_length=64)
    # opened | assigned | state | outcome | comment | reopened | auto_closed | overdue | escalated | reshipped
    kind: str = Field(max_length=24)
    from_value: str | None = Field(default=None, max_length=128)
    to_value: str | None = Field(default=None, max_length=128)
    body: str = Field(default="", max_length=2000)


class TicketRotation(SQLModel, table=True):
    """Whose turn it is in a round-robin team, kept in the store so restarts and replicas agree."""

    __tablename__ = "ticket_rotation"

    team: str = Field(primary_key=True, max_length=64)
    #: How many tickets the team has handed out round-robin (the next member is ``turn % len(members)``).
    turn: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RouteNorm(SQLModel, table=True):
    """One learned distribution: how long a phase of a parcel's journey takes on a route (``monitor.norms``).

    ``level`` says what the row groups: ``route`` (carrier, origin and destination province),
    ``region`` (carrier and region class) or ``carrier``; the keys it does not group by are "".
    """

    __tablename__ = "route_norm"
    __table_args__ = (
        UniqueConstraint(
            "level", "carrier", "origin_province", "dest_province", "region_class", "phase", name="uq_route_norm"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=8)
    carrier: str = Field(max_length=32)
    origin_province: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    dest_province: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    region_class: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    phase: str = Field(max_length=32)
    #: Seconds.
    p50: float
    p90: float
    p95: float
    p99: float
    samples: int
    learned_at: datetime = Field(sa_type=UTCDateTime)
    window_days: int
