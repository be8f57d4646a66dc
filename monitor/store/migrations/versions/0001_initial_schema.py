"""initial schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parcel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("tracking_no", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("shipped_at", UTCDateTime(), nullable=False),
        sa.Column("pickup_deadline", UTCDateTime(), nullable=False),
        sa.Column("promised_delivery", UTCDateTime(), nullable=True),
        sa.Column("presale", sa.Boolean(), nullable=False),
        sa.Column("origin_province", sa.String(length=16), nullable=True),
        sa.Column("destination_province", sa.String(length=16), nullable=True),
        sa.Column("region_class", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("status_code", sa.String(length=32), nullable=False),
        sa.Column("exception_reason", sa.String(length=16), nullable=True),
        sa.Column("last_event_at", UTCDateTime(), nullable=True),
        sa.Column("picked_up_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("intercept_state", sa.String(length=16), nullable=True),
        sa.Column("pickup_risk_due", UTCDateTime(), nullable=True),
        sa.Column("pickup_due", UTCDateTime(), nullable=True),
        sa.Column("stall_due", UTCDateTime(), nullable=True),
        sa.Column("lost_due", UTCDateTime(), nullable=True),
        sa.Column("delivery_due", UTCDateTime(), nullable=True),
        sa.Column("next_poll_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("carrier", "tracking_no", name="uq_parcel_carrier_tracking"),
    )
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parcel_delivery_due"), ["delivery_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_lost_due"), ["lost_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_next_poll_at"), ["next_poll_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_pickup_due"), ["pickup_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_pickup_risk_due"), ["pickup_risk_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_parcel_stall_due"), ["stall_due"], unique=False)

    op.create_table(
        "refund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("refund_id"),
    )
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_order_id"), ["order_id"], unique=False)

    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.String(length=2048), nullable=False),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activity_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_activity_parcel_id"), ["parcel_id"], unique=False)

    op.create_table(
        "anomaly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("compensation_fen", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=256), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("anomaly", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_anomaly_parcel_id"), ["parcel_id"], unique=False)
        batch_op.create_index("ix_anomaly_state_rule", ["state", "rule"], unique=False)
        batch_op.create_index(
            "uq_anomaly_active",
            ["parcel_id", "rule"],
            unique=True,
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )

    op.create_table(
        "intercept",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("refund_id", "parcel_id", name="uq_intercept_refund_parcel"),
    )
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intercept_parcel_id"), ["parcel_id"], unique=False)

    op.create_table(
        "tracking_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.Column("raw_code", sa.String(length=32), nullable=False),
        sa.Column("raw_text", sa.String(length=512), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("parcel_id", "fingerprint", name="uq_event_fingerprint"),
    )
    op.create_table(
        "action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomaly.id"],
        ),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.create_index("ix_action_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_action_parcel_id"), ["parcel_id"], unique=False)

    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomaly.id"],
        ),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcel.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_parcel_id"), ["parcel_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_parcel_id"))

    op.drop_table("ticket")
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_parcel_id"))
        batch_op.drop_index("ix_action_due")

    op.drop_table("action")
    op.drop_table("tracking_event")
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intercept_parcel_id"))

    op.drop_table("intercept")
    with op.batch_alter_table("anomaly", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_anomaly_active",
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )
        batch_op.drop_index("ix_anomaly_state_rule")
        batch_op.drop_index(batch_op.f("ix_anomaly_parcel_id"))

    op.drop_table("anomaly")
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_parcel_id"))
        batch_op.drop_index(batch_op.f("ix_activity_at"))

    op.drop_table("activity")
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_order_id"))

    op.drop_table("refund")
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parcel_stall_due"))
        batch_op.drop_index(batch_op.f("ix_parcel_pickup_risk_due"))
        batch_op.drop_index(batch_op.f("ix_parcel_pickup_due"))
        batch_op.drop_index(batch_op.f("ix_parcel_order_id"))
        batch_op.drop_index(batch_op.f("ix_parcel_next_poll_at"))
        batch_op.drop_index(batch_op.f("ix_parcel_lost_due"))
        batch_op.drop_index(batch_op.f("ix_parcel_delivery_due"))

    op.drop_table("parcel")
