"""adaptive polling: back-off step, last poll, carrier usage and health; actions by refund; parcels by status

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_polled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("poll_step", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(batch_op.f("ix_parcel_status"), ["status"], unique=False)
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_refund_id"), ["refund_id"], unique=False)
    op.create_table(
        "carrier_usage",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("carrier", "day"),
    )
    op.create_table(
        "carrier_health",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("next_try_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=False),
        sa.Column("alerted", sa.String(length=8), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("carrier"),
    )


def downgrade() -> None:
    op.drop_table("carrier_health")
    op.drop_table("carrier_usage")
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_refund_id"))
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parcel_status"))
        batch_op.drop_column("poll_step")
        batch_op.drop_column("last_polled_at")
