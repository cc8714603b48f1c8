"""launch token uses: a used launch token's jti, per installation, refused again until it expires

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-04 12:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "launch_token_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installation_id", "jti"),
    )
    op.create_index("ix_launch_token_uses_expires_at", "launch_token_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_launch_token_uses_expires_at", table_name="launch_token_uses")
    op.drop_table("launch_token_uses")
