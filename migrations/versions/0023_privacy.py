"""privacy: the audit of forgotten customers; actions say whether their agent was verified

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-04 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("identifier_kind", sa.String(length=20), nullable=False),
        sa.Column("identifier_hash", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_data_erasures_installation_created",
        "data_erasures",
        ["installation_id", "created_at"],
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agent_verified", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    # Every Freshdesk action so far named its agent from the page: none was verified.
    op.execute(
        "UPDATE actions SET agent_verified = false WHERE installation_id IN "
        "(SELECT id FROM installations WHERE platform = 'freshdesk')"
    )


def downgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_column("agent_verified")
    op.drop_index("ix_data_erasures_installation_created", table_name="data_erasures")
    op.drop_table("data_erasures")
