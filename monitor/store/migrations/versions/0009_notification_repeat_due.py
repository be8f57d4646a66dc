"""notification.repeat_due_at: the repeat pass of a flush reads only the notices due again, not every sent one

Revision ID: 0009
Revises: 0008
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeat_due_at", UTCDateTime(), nullable=True))
    repeating = sa.text("repeat_due_at IS NOT NULL")
    op.create_index(
        "ix_notification_repeat", "notification", ["repeat_due_at"], sqlite_where=repeating,
        postgresql_where=repeating,
    )  # fmt: skip
    notification = sa.table(
        "notification",
        sa.column("id", sa.Integer),
        sa.column("state", sa.String),
        sa.column("kind", sa.String),
        sa.column("repeat_seconds", sa.Integer),
        sa.column("sent_at", UTCDateTime()),
        sa.column("repeat_due_at", UTCDateTime()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(notification.c.id, notification.c.sent_at, notification.c.repeat_seconds).where(
            notification.c.state == "sent",
            notification.c.kind == "firing",
            notification.c.repeat_seconds.is_not(None),
            notification.c.sent_at.is_not(None),
        )
    ).all()
    if rows:
        stmt = (
            sa.update(notification)
            .where(notification.c.id == sa.bindparam("nid"))
            .values(repeat_due_at=sa.bindparam("due"))
        )
        conn.execute(stmt, [{"nid": r.id, "due": r.sent_at + timedelta(seconds=r.repeat_seconds)} for r in rows])


def downgrade() -> None:
    op.drop_index("ix_notification_repeat", table_name="notification")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_column("repeat_due_at")
