"""idempotency keys remember which request holds the claim

Revision ID: 0002
Revises: 0001
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column(
        "idempotency_keys",
        sa.Column(
            "claim_token", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_column("idempotency_keys", "claim_token", schema="orders")
