"""notification log

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.String(length=256), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("repeat_seconds", sa.Integer(), nullable=True),
        sa.Column("send_resolved", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(length=512), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["anomaly_id"], ["anomaly.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("anomaly_id", "receiver", "kind", name="uq_notification"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_notification_group", ["receiver", "group_key", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_notification_anomaly_id"), ["anomaly_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_anomaly_id"))
        batch_op.drop_index("ix_notification_group")
        batch_op.drop_index("ix_notification_due")
    op.drop_table("notification")
