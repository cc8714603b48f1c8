"""shopify: an optional per-installation source of customers and orders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("shopify_shop", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("shopify_credentials_encrypted", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.drop_column("shopify_credentials_encrypted")
        batch.drop_column("shopify_shop")
