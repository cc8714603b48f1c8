"""customer data in: the company's customer ids, push tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            batch.f("uq_customers_installation_id_external_id"), ["installation_id", "external_id"]
        )
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("push_token_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            batch.f("uq_installations_push_token_hash"), ["push_token_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.drop_constraint(batch.f("uq_installations_push_token_hash"), type_="unique")
        batch.drop_column("push_token_hash")
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint(
            batch.f("uq_customers_installation_id_external_id"), type_="unique"
        )
        batch.drop_column("external_id")
