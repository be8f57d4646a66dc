"""which receivers took the pickup_rate_forecast alert, so a retry sends only to the others

Revision ID: 0017
Revises: 0016

The ``pickup_rate_forecast`` alert (``monitor.kpi.watch``) is sent straight to the route's
receivers. With two receivers and one of them down, the whole claim used to be given back,
and the next run sent the alert to both again: the one that had taken it got it twice.
``told`` keeps the receivers that took the message ``alerted`` names, so a later run sends
only to those that have not; a claim of a new crossing starts it empty.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pickup_forecast", schema=None) as batch_op:
        # rows already alerted were told whole before this column existed: "*" stands for every receiver
        batch_op.add_column(sa.Column("told", sa.String(length=256), nullable=False, server_default="*"))


def downgrade() -> None:
    with op.batch_alter_table("pickup_forecast", schema=None) as batch_op:
        batch_op.drop_column("told")
