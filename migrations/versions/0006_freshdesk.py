"""freshdesk: installation secrets for the Freshdesk app, with a previous one during rotation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("freshdesk_secret_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("freshdesk_previous_secret_hash", sa.String(length=64), nullable=True)
        )
        batch.add_column(
            sa.Column("freshdesk_previous_secret_expires_at", sa.DateTime(), nullable=True)
        )
        batch.create_unique_constraint(
            batch.f("uq_installations_freshdesk_secret_hash"), ["freshdesk_secret_hash"]
        )
        batch.create_index(
            batch.f("ix_installations_freshdesk_previous_secret_hash"),
            ["freshdesk_previous_secret_hash"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.drop_index(batch.f("ix_installations_freshdesk_previous_secret_hash"))
        batch.drop_constraint(batch.f("uq_installations_freshdesk_secret_hash"), type_="unique")
        batch.drop_column("freshdesk_previous_secret_expires_at")
        batch.drop_column("freshdesk_previous_secret_hash")
        batch.drop_column("freshdesk_secret_hash")
