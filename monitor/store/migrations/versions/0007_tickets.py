"""tickets that get worked: state, assignee/team, money at stake, deadlines, outcome, history, rotation

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("team", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("shop", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("carrier", sa.String(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("stake_fen", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("due_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("overdue_alerted_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("note", sa.String(length=1000), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("closed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("close_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reopened_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))
        batch_op.create_foreign_key("fk_ticket_assignee_id_account", "account", ["assignee_id"], ["id"])
    # existing tickets stay open; copy the filter columns and the money at stake from their parcel/anomaly
    op.execute(
        "UPDATE ticket SET updated_at = created_at,"
        " shop = COALESCE((SELECT p.shop FROM parcel p WHERE p.id = ticket.parcel_id), ''),"
        " carrier = COALESCE((SELECT p.carrier FROM parcel p WHERE p.id = ticket.parcel_id), ''),"
        " stake_fen = COALESCE("
        "(SELECT a.compensation_fen FROM anomaly a WHERE a.id = ticket.anomaly_id),"
        " (SELECT p.amount_fen FROM parcel p WHERE p.id = ticket.parcel_id))"
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=UTCDateTime(), nullable=False)
        batch_op.create_index("ix_ticket_assignee_state_stake", ["assignee_id", "state", "stake_fen"], unique=False)
        batch_op.create_index("ix_ticket_state_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_ticket_team_state", ["team", "state"], unique=False)

    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("from_value", sa.String(length=128), nullable=True),
        sa.Column("to_value", sa.String(length=128), nullable=True),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_event_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_rotation",
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team"),
    )

    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaces_parcel_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_parcel_replaces_parcel_id_parcel", "parcel", ["replaces_parcel_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_parcel_replaces_parcel_id"), ["replaces_parcel_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parcel", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parcel_replaces_parcel_id"))
        batch_op.drop_constraint("fk_parcel_replaces_parcel_id_parcel", type_="foreignkey")
        batch_op.drop_column("replaces_parcel_id")
    op.drop_table("ticket_rotation")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_event_ticket_id"))
    op.drop_table("ticket_event")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_team_state")
        batch_op.drop_index("ix_ticket_state_due")
        batch_op.drop_index("ix_ticket_assignee_state_stake")
        batch_op.drop_constraint("fk_ticket_assignee_id_account", type_="foreignkey")
        for column in (
            "updated_at",
            "reopened_count",
            "close_reason",
            "closed_at",
            "note",
            "outcome",
            "escalated_at",
            "overdue_alerted_at",
            "due_at",
            "stake_fen",
            "carrier",
            "shop",
            "team",
        ):
            batch_op.drop_column(column)
        batch_op.drop_column("assignee_id")
