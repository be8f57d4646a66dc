"""intercepts belong to the parcel: one open per parcel, attempts, joins, the stuck watchdog

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = "state IN ('held', 'requested', 'pending', 'accepted')"


def upgrade() -> None:
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("joined_to", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("state_since", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("stuck_alerted_at", UTCDateTime(), nullable=True))
    # before the unique index: a parcel that two refunds intercepted twice keeps its first intercept open
    first = f"(SELECT MIN(o.id) FROM intercept o WHERE o.parcel_id = intercept.parcel_id AND o.{OPEN})"
    op.execute(f"UPDATE intercept SET state = 'joined', joined_to = {first} WHERE {OPEN} AND id > {first}")
    op.execute("UPDATE intercept SET state_since = COALESCE(decided_at, requested_at)")
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.create_index(
            "uq_intercept_open_parcel",
            ["parcel_id"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )
        batch_op.create_index("ix_intercept_state_since", ["state", "state_since"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.drop_index("ix_intercept_state_since")
        batch_op.drop_index("uq_intercept_open_parcel", sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.drop_column("stuck_alerted_at")
        batch_op.drop_column("state_since")
        batch_op.drop_column("joined_to")
        batch_op.drop_column("attempt")
