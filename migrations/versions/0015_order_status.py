"""orders: payment and fulfilment status, tracking link and item count, when the source says

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 08:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("fulfillment_status", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("tracking_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("item_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("item_count")
        batch_op.drop_column("tracking_url")
        batch_op.drop_column("fulfillment_status")
        batch_op.drop_column("status")
