"""daily KPI rollup, kept after finished parcels are purged

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kpi_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("shipped", sa.Integer(), nullable=False),
        sa.Column("pickup_due", sa.Integer(), nullable=False),
        sa.Column("picked_up_in_time", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("anomalies_opened", sa.Text(), nullable=False),
        sa.Column("intercepts_requested", sa.Integer(), nullable=False),
        sa.Column("intercepts_succeeded", sa.Integer(), nullable=False),
        sa.Column("intercepts_failed", sa.Integer(), nullable=False),
        sa.Column("intercepts_held", sa.Integer(), nullable=False),
        sa.Column("intercepts_skipped", sa.Integer(), nullable=False),
        sa.Column("intercept_latencies", sa.Text(), nullable=False),
        sa.Column("rolled_up_at", UTCDateTime(), nullable=False),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("day", "shop", "carrier"),
    )


def downgrade() -> None:
    op.drop_table("kpi_daily")
