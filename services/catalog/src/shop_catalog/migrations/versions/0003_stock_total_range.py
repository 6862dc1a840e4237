"""available plus reserved stock stays within the maximum

Revision ID: 0003
Revises: 0002
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_check_constraint(
        "stock_total_range",
        "products",
        "stock_available + stock_reserved <= 1000000000",
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_constraint("ck_products_stock_total_range", "products", schema="catalog", type_="check")
