"""unknown carrier codes seen (the console's 快递公司 page); last success per carrier

Also two indexes for the console's 拦截 and 快递公司 pages: intercepts by (state, id), so a
page of one state (and the failed-first list) is an index range read newest first; and the
parcels still watched per carrier, a partial index the count reads without touching the table.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WATCHED = "status NOT IN ('delivered', 'returned')"


def upgrade() -> None:
    op.create_table(
        "unknown_code",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("text_sample", sa.String(length=80), nullable=False, server_default=""),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("carrier", "code"),
    )
    with op.batch_alter_table("carrier_health", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_success_at", UTCDateTime(), nullable=True))
    op.create_index("ix_intercept_state_id", "intercept", ["state", "id"])
    op.create_index(
        "ix_parcel_watched_carrier", "parcel", ["carrier"], sqlite_where=sa.text(WATCHED),
        postgresql_where=sa.text(WATCHED),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_parcel_watched_carrier", table_name="parcel")
    op.drop_index("ix_intercept_state_id", table_name="intercept")
    with op.batch_alter_table("carrier_health", schema=None) as batch_op:
        batch_op.drop_column("last_success_at")
    op.drop_table("unknown_code")
