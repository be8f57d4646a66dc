"""indexes and columns for the set-based sweep, claims and ingest

Revision ID: 0013
Revises: 0012

The rule sweep rewrites each due parcel's row (it clears the deadline); on PostgreSQL every
new row version gets an entry in every index of the parcel table whose predicate it meets,
and at 1M parcels those indexes no longer fit in shared buffers, so each entry is a page
read and a dirty page written back (benchmarks/README.md, B1). The deadline indexes become
partial (only armed rows: a cleared deadline adds no entry, and the indexes shrink from a
million mostly-NULL entries to the armed ones). SQLite keeps full ones: its ``MIN(column)``
cannot use a partial index.

The poll claim picks parcels at risk first; two small partial indexes find them (pending
parcels by carrier and pickup deadline, parcels with an intercept state), so a claim no
longer sorts every due row (B6).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DEADLINES = ("pickup_risk_due", "pickup_due", "stall_due", "lost_due", "delivery_due")
PENDING_PICKUP = sa.text("picked_up_at IS NULL")
HAS_INTERCEPT = sa.text("intercept_state IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in DEADLINES:
            op.drop_index(f"ix_parcel_{column}", table_name="parcel")
            op.create_index(
                f"ix_parcel_{column}", "parcel", [column], postgresql_where=sa.text(f"{column} IS NOT NULL")
            )
    op.create_index(
        "ix_parcel_pending_pickup",
        "parcel",
        ["carrier", "pickup_deadline"],
        sqlite_where=PENDING_PICKUP,
        postgresql_where=PENDING_PICKUP,
    )
    op.create_index(
        "ix_parcel_intercept_state",
        "parcel",
        ["intercept_state"],
        sqlite_where=HAS_INTERCEPT,
        postgresql_where=HAS_INTERCEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_parcel_intercept_state", table_name="parcel")
    op.drop_index("ix_parcel_pending_pickup", table_name="parcel")
    if op.get_bind().dialect.name == "postgresql":
        for column in DEADLINES:
            op.drop_index(f"ix_parcel_{column}", table_name="parcel")
            op.create_index(f"ix_parcel_{column}", "parcel", [column])
