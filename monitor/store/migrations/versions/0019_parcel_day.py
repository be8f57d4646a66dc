"""the shipped and pickup days in a table of their own, kept by triggers; fewer parcel index entries

Revision ID: 0019
Revises: 0018

Every carrier scan rewrites its parcel's row (status, last scan, deadlines). Those columns
are indexed, so on PostgreSQL no such update is HOT: each new row version adds an entry to
every index of ``parcel`` whose predicate it meets. The two covering indexes of migration
0014 (``ix_parcel_shipped_day``, ``ix_parcel_pickup_day``, for the 指标 page's live counts
and the pickup forecast) were the largest: at 1,000,000 parcels they were half of the time
of ingest's parcel update (benchmarks/README.md, B2). They index columns that a scan never
changes, except ``picked_up_at`` once and ``held`` on a refund.

So those columns are copied to ``parcel_day`` and indexed there. Triggers on ``parcel`` keep
the copy: every insert, an update that changes one of the copied columns (a row trigger
with a ``WHEN`` clause, so a scan that changes none of them costs one comparison), every
delete. On PostgreSQL the insert and delete triggers are per statement, over the
statement's transition table, so a bulk load or a purge is one set-based statement. No code
writes ``parcel_day``: whatever writes ``parcel`` (the shipment book, a bulk ``COPY``, a
script) keeps it right.

Also on PostgreSQL: ``slow_due`` and ``replaces_parcel_id`` become partial indexes (armed or
set rows only), as the deadline indexes did in 0013 — most parcels have neither.
"""

import sqlalchemy as sa
from alembic import op

from monitor.store.types import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COPIED = ("shop", "carrier", "shipped_at", "pickup_deadline", "held", "picked_up_at")
_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COPIED)
_SETS = ", ".join(f"{c} = excluded.{c}" for c in COPIED)
_NAMES = ", ".join(COPIED)

PG_FUNCTIONS = (
    f"""CREATE FUNCTION parcel_day_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO parcel_day (parcel_id, {_NAMES}) SELECT id, {_NAMES} FROM inserted
        ON CONFLICT (parcel_id) DO UPDATE SET {_SETS};
    RETURN NULL;
END $$""",
    f"""CREATE FUNCTION parcel_day_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO parcel_day (parcel_id, {_NAMES})
        VALUES (NEW.id, {", ".join(f"NEW.{c}" for c in COPIED)})
        ON CONFLICT (parcel_id) DO UPDATE SET {_SETS};
    RETURN NULL;
END $$""",
    """CREATE FUNCTION parcel_day_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM parcel_day d USING deleted WHERE d.parcel_id = deleted.id;
    RETURN NULL;
END $$""",
)
PG_TRIGGERS = (
    "CREATE TRIGGER parcel_day_insert AFTER INSERT ON parcel REFERENCING NEW TABLE AS inserted"
    " FOR EACH STATEMENT EXECUTE FUNCTION parcel_day_inserted()",
    f"CREATE TRIGGER parcel_day_update AFTER UPDATE ON parcel FOR EACH ROW WHEN ({_CHANGED})"
    " EXECUTE FUNCTION parcel_day_updated()",
    "CREATE TRIGGER parcel_day_delete AFTER DELETE ON parcel REFERENCING OLD TABLE AS deleted"
    " FOR EACH STATEMENT EXECUTE FUNCTION parcel_day_deleted()",
)
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER parcel_day_insert AFTER INSERT ON parcel BEGIN
    INSERT INTO parcel_day (parcel_id, {_NAMES}) VALUES (NEW.id, {", ".join(f"NEW.{c}" for c in COPIED)})
        ON CONFLICT (parcel_id) DO UPDATE SET {_SETS};
END""",
    f"""CREATE TRIGGER parcel_day_update AFTER UPDATE OF {_NAMES} ON parcel
WHEN {_CHANGED.replace("IS DISTINCT FROM", "IS NOT")}
BEGIN
    INSERT INTO parcel_day (parcel_id, {_NAMES}) VALUES (NEW.id, {", ".join(f"NEW.{c}" for c in COPIED)})
        ON CONFLICT (parcel_id) DO UPDATE SET {_SETS};
END""",
    """CREATE TRIGGER parcel_day_delete AFTER DELETE ON parcel BEGIN
    DELETE FROM parcel_day WHERE parcel_id = OLD.id;
END""",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "parcel_day",
        sa.Column("parcel_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shop", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("shipped_at", UTCDateTime(), nullable=False),
        sa.Column("pickup_deadline", UTCDateTime(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("picked_up_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("parcel_id"),
    )
    op.execute(f"INSERT INTO parcel_day (parcel_id, {_NAMES}) SELECT id, {_NAMES} FROM parcel")
    op.create_index("ix_parcel_day_shipped", "parcel_day", ["shipped_at", "shop", "carrier"])
    op.create_index(
        "ix_parcel_day_pickup", "parcel_day", ["pickup_deadline", "shop", "carrier", "held", "picked_up_at"]
    )
    for sql in (*PG_FUNCTIONS, *PG_TRIGGERS) if postgresql else SQLITE_TRIGGERS:
        op.execute(sql)
    op.drop_index("ix_parcel_shipped_day", table_name="parcel")
    op.drop_index("ix_parcel_pickup_day", table_name="parcel")
    if postgresql:
        for column in ("slow_due", "replaces_parcel_id"):
            op.drop_index(f"ix_parcel_{column}", table_name="parcel")
            op.create_index(
                f"ix_parcel_{column}", "parcel", [column], postgresql_where=sa.text(f"{column} IS NOT NULL")
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for column in ("slow_due", "replaces_parcel_id"):
            op.drop_index(f"ix_parcel_{column}", table_name="parcel")
            op.create_index(f"ix_parcel_{column}", "parcel", [column])
    op.create_index("ix_parcel_shipped_day", "parcel", ["shipped_at", "shop", "carrier"])
    op.create_index("ix_parcel_pickup_day", "parcel", ["pickup_deadline", "shop", "carrier", "held", "picked_up_at"])
    for trigger in ("parcel_day_insert", "parcel_day_update", "parcel_day_delete"):
        op.execute(f"DROP TRIGGER {trigger} ON parcel" if postgresql else f"DROP TRIGGER {trigger}")
    if postgresql:
        for function in ("parcel_day_inserted", "parcel_day_updated", "parcel_day_deleted"):
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_index("ix_parcel_day_pickup", table_name="parcel_day")
    op.drop_index("ix_parcel_day_shipped", table_name="parcel_day")
    op.drop_table("parcel_day")
