"""an index on the anomaly a ticket belongs to, so resolving an anomaly costs one seek, not every open ticket

Revision ID: 0020
Revises: 0019

When anomalies resolve, the ticket book looks for their tickets still open or processing
(``TicketRows.of_anomalies``: ``anomaly_id IN (…) AND state IN (…)``). ``ticket.anomaly_id`` had
no index, so SQLite took ``ix_ticket_state_due`` and read every open ticket: in a 100,000-parcel
replay, where nobody closes tickets, 7 % of the time by its end and growing with the month; a
daemon whose ops staff leave tickets open pays the same on every resolution.
``(anomaly_id, state)`` answers both terms, so SQLite prefers it without statistics too.
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_anomaly", "ticket", ["anomaly_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_ticket_anomaly", table_name="ticket")
