"""orders: one index that covers a customer's order history

Segmenting reads each customer's orders in date order: amount, discount and category too.
With them in the index, the read is a walk along the index instead of a lookup in the table
for every order (the orders of one customer lie all over a table filled in date order). It
replaces the index on (customer_id, placed_at), of which it is an extension.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 08:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTORY = ["customer_id", "placed_at", "amount_cents", "discount_code", "category"]


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_customer_history", HISTORY, unique=False)
        batch_op.drop_index("ix_orders_customer_placed")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_customer_placed", ["customer_id", "placed_at"], unique=False
        )
        batch_op.drop_index("ix_orders_customer_history")
