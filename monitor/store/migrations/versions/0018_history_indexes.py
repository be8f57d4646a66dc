"""indexes so that queueing and sending an alert cost what is due, not the whole history

Revision ID: 0018
Revises: 0017

Three reads on the alert path grew with every anomaly ever alerted (found by profiling a
100,000-parcel replay, where they were a quarter of the time by its end):

- the flush asks which tickets and reshipment suggestions were queued for the anomalies it
  sends (``UnitOfWork.action_kinds``): ``action.anomaly_id`` had no index, so each flush read
  the whole outbox, which keeps every action done;
- queueing a notice asks when its group last went out (``MAX(sent_at)``) and whether it has a
  pending batch (``MIN(due_at)``): ``(receiver, group_key, state)`` found the group, but then
  read every row of it, and a group such as ``rule=stalled`` holds every stall ever told.

``(anomaly_id, kind)`` on ``action`` answers the first by a search (covering: the row is not
read); ``(receiver, group_key, state, due_at)`` and ``(receiver, group_key, sent_at)`` on
``notification`` answer the other two by one index seek each.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_action_anomaly", "action", ["anomaly_id", "kind"])
    op.drop_index("ix_notification_group", table_name="notification")
    op.create_index("ix_notification_group", "notification", ["receiver", "group_key", "state", "due_at"])
    op.create_index("ix_notification_group_sent", "notification", ["receiver", "group_key", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_notification_group_sent", table_name="notification")
    op.drop_index("ix_notification_group", table_name="notification")
    op.create_index("ix_notification_group", "notification", ["receiver", "group_key", "state"])
    op.drop_index("ix_action_anomaly", table_name="action")
