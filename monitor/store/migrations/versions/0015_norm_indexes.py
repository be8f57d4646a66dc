"""an index on each parcel's scans in time order, for learning route norms

Revision ID: 0015
Revises: 0014

Learning route norms (``monitor.norms.learn``) walks every scan of the window's delivered
parcels in time order per parcel (``LAG`` over ``PARTITION BY parcel_id ORDER BY time, id``).
Without an index in that order both backends sorted all the scans first (7.35 M at 1,000,000
parcels: the largest single cost of a learning run on SQLite, benchmarks/README.md B11). With
``(parcel_id, time, id, status)`` the scans are read in window order straight from the index
(covering: the rows are not read), so the window streams without a sort.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_parcel_time", "tracking_event", ["parcel_id", "time", "id", "status"])


def downgrade() -> None:
    op.drop_index("ix_event_parcel_time", table_name="tracking_event")
