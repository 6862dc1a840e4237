"""idempotency claims remember the database session of the request that holds them

A claim whose request died (its API process killed) is taken over as soon as that
session is gone, instead of after the fixed lease (`claimed_until`).

Revision ID: 0004
Revises: 0003
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "idempotency_keys", sa.Column("claimer_pid", sa.Integer(), nullable=True), schema="orders"
    )
    op.add_column(
        "idempotency_keys",
        sa.Column("claimer_started", sa.DateTime(timezone=True), nullable=True),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_column("idempotency_keys", "claimer_started", schema="orders")
    op.drop_column("idempotency_keys", "claimer_pid", schema="orders")
