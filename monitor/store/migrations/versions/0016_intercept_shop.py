"""the parcel's shop and carrier on each intercept, for the 拦截 page's filters

Revision ID: 0016
Revises: 0015

The console's 拦截 page (and ``GET /api/v1/intercepts``) counts intercepts per state for one
shop or carrier. Both live on the parcel, so each count joined every intercept to its parcel
by key: ~1 s at 1,000,000 parcels and 20,000 intercepts (benchmarks/README.md B13), growing
with the intercepts. An intercept's parcel never changes shop or carrier, so the row keeps
them (written with the intercept, filled here for the rows that exist) and
``(shop, state, id)`` / ``(carrier, state, id)`` answer the counts and the pages from an index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("carrier", sa.String(length=32), nullable=False, server_default=""))
    op.execute(
        "UPDATE intercept SET shop = (SELECT parcel.shop FROM parcel WHERE parcel.id = intercept.parcel_id), "
        "carrier = (SELECT parcel.carrier FROM parcel WHERE parcel.id = intercept.parcel_id)"
    )
    op.create_index("ix_intercept_shop_state", "intercept", ["shop", "state", "id"])
    op.create_index("ix_intercept_carrier_state", "intercept", ["carrier", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_intercept_carrier_state", table_name="intercept")
    op.drop_index("ix_intercept_shop_state", table_name="intercept")
    with op.batch_alter_table("intercept", schema=None) as batch_op:
        batch_op.drop_column("carrier")
        batch_op.drop_column("shop")
