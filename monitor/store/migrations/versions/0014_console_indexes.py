"""indexes for the console's pages

Revision ID: 0014
Revises: 0013

The 指标 page counts today's partial day live from the tables (``KpiStore.live``): parcels shipped,
pickups fallen due, deliveries, anomalies opened, each in [local midnight, now) per shop and
carrier. With no index on those times every view of the page read the whole parcel table three
times (≈ 2.5 s each at 1,000,000 parcels, benchmarks/b10_console.py). These indexes cover the
counts (time first, then shop and carrier, then what the count reads), so each is a range scan
of the day's entries and no parcel row is read. Deliveries are indexed only where set.

The 工作台's "all" view and its filters (rule, carrier, shop) sorted every active ticket by stake
(``ORDER BY stake_fen DESC, id``: ≈ 140 ms for 20,000 active tickets on SQLite); an index on the
sort keys, with the filtered columns after them, is read in order and stops at the page
(0.4 ms; 2.4 ms with a rule and a carrier).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DELIVERED = sa.text("delivered_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_parcel_shipped_day", "parcel", ["shipped_at", "shop", "carrier"])
    op.create_index("ix_parcel_pickup_day", "parcel", ["pickup_deadline", "shop", "carrier", "held", "picked_up_at"])
    op.create_index(
        "ix_parcel_delivered_day",
        "parcel",
        ["delivered_at", "shop", "carrier"],
        sqlite_where=DELIVERED,
        postgresql_where=DELIVERED,
    )
    op.create_index("ix_anomaly_opened_at", "anomaly", ["opened_at"])
    # today's intercepts from the intercepts, not a scan of every parcel joined to them
    op.create_index("ix_intercept_requested_at", "intercept", ["requested_at"])
    op.create_index("ix_ticket_queue", "ticket", ["stake_fen", "id", "state", "rule", "carrier", "shop", "assignee_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_queue", table_name="ticket")
    op.drop_index("ix_intercept_requested_at", table_name="intercept")
    op.drop_index("ix_anomaly_opened_at", table_name="anomaly")
    op.drop_index("ix_parcel_delivered_day", table_name="parcel")
    op.drop_index("ix_parcel_pickup_day", table_name="parcel")
    op.drop_index("ix_parcel_shipped_day", table_name="parcel")
