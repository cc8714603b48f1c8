"""sidebar: what the service's processes share: helpdesk answers one fetched for all

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 09:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installation_id", "key"),
    )
    op.create_index("ix_shared_cache_fetched_at", "shared_cache", ["fetched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shared_cache_fetched_at", table_name="shared_cache")
    op.drop_table("shared_cache")
