"""the saga's bookkeeping on orders, and indexes for the periodic queries (ADR 0012)

Revision ID: 0003
Revises: 0002

Orders remember their latest request to Catalog (so the sweeper can re-send it), when to
look at them next, since when Catalog has been seen answering later orders, and what
Catalog reported doing with their stock. Partial indexes serve the PENDING sweep and the
reconciler's release check (a few rows each, whatever the table's size); a plain one
serves the inbox retention DELETE, which scanned the whole inbox.

Orders placed before this revision get `next_check_at = now()` and no request id: the
sweeper treats their placement as sent at their creation. The new columns' defaults are
constant or `now()`, so adding them rewrites nothing; the indexes are built CONCURRENTLY
(outside the migration's transaction): if one build fails, drop the INVALID index it
leaves and run the migration again.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SCHEMA = "orders"
STAMPS = ("catalog_answering_since", "stock_reserved_at", "stock_released_at")


def upgrade() -> None:
    op.add_column("orders", sa.Column("catalog_request_id", sa.Uuid(), nullable=True), schema=SCHEMA)
    op.add_column(
        "orders",
        sa.Column("catalog_request_sends", sa.Integer(), server_default="1", nullable=False),
        schema=SCHEMA,
    )
    op.add_column(
        "orders",
        sa.Column(
            "next_check_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=SCHEMA,
    )
    for name in STAMPS:
        op.add_column(
            "orders", sa.Column(name, sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
        )
    # Built without blocking writes: the APIs keep placing orders during a rolling deploy.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_pending_due",
            "orders",
            ["next_check_at"],
            schema=SCHEMA,
            postgresql_where=sa.text("status = 'PENDING'"),
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_orders_release_unacknowledged",
            "orders",
            ["next_check_at"],
            schema=SCHEMA,
            postgresql_where=sa.text(
                "status = 'CANCELLED' AND stock_reserved_at IS NOT NULL"
                " AND stock_released_at IS NULL"
            ),
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_inbox_received_at",
            "inbox",
            ["received_at"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("ix_inbox_received_at", table_name="inbox", schema=SCHEMA)
    op.drop_index("ix_orders_release_unacknowledged", table_name="orders", schema=SCHEMA)
    op.drop_index("ix_orders_pending_due", table_name="orders", schema=SCHEMA)
    for name in (*reversed(STAMPS), "next_check_at", "catalog_request_sends", "catalog_request_id"):
        op.drop_column("orders", name, schema=SCHEMA)
