"""route norms learned from finished parcels; parcel.slow_due for slow_for_route

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_norm",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("origin_province", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("dest_province", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("region_class", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("p50", sa.Float(), nullable=False),
        sa.Column("p90", sa.Float(), nullable=False),
        sa.Column("p95", sa.Float(), nullable=False),
        sa.Column("p99", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("learned_at", UTCDateTime(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.UniqueConstraint(
            "level", "carrier", "origin_province", "dest_province", "region_class", "phase", name="uq_route_norm"
        ),
    )
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slow_due", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_parcel_slow_due", ["slow_due"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.drop_index("ix_parcel_slow_due")
        batch_op.drop_column("slow_due")
    op.drop_table("route_norm")
