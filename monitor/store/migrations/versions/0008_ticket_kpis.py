"""ticket KPIs in the daily rollup: opened, closed, time to close, outcomes, gone overdue, per rule

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_figures", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.drop_column("ticket_figures")
