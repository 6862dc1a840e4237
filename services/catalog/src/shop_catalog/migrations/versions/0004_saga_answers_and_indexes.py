"""rejections keep their verdicts; an index for the inbox retention DELETE (ADR 0012)

Revision ID: 0004
Revises: 0003

A repeated placement of a rejected order is answered with the same verdicts, so the
reservation keeps them. The inbox retention DELETE scanned the whole inbox; its index is
built CONCURRENTLY (outside the migration's transaction): if the build fails, drop the
INVALID index it leaves and run the migration again.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.add_column(
        "reservations",
        sa.Column(
            "rejected_lines",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        schema=SCHEMA,
    )
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_inbox_received_at",
            "inbox",
            ["received_at"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("ix_inbox_received_at", table_name="inbox", schema=SCHEMA)
    op.drop_column("reservations", "rejected_lines", schema=SCHEMA)
