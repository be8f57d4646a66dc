"""pickup-rate forecast state (one alert per crossing)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pickup_forecast",
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("alerted", sa.String(length=8), nullable=False),
        sa.Column("below_day", sa.Date(), nullable=True),
        sa.Column("point", sa.Float(), nullable=True),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=True),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("shop"),
    )
    # the forecast's range scan of parcels whose pickup deadline is still ahead reads ix_parcel_pickup_day (0014)


def downgrade() -> None:
    op.drop_table("pickup_forecast")
