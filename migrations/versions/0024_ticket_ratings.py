"""ticket ratings: the helpdesk's satisfaction survey answer per ticket, for the effects report

Revision ID: 0024
Revises: 0019
Create Date: 2026-12-04 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_ratings",
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("rating_id", sa.String(length=64), nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.Column("rated_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("installation_id", "ticket_id"),
    )
    op.create_index("ix_ticket_ratings_rated_at", "ticket_ratings", ["rated_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_ratings_rated_at", table_name="ticket_ratings")
    op.drop_table("ticket_ratings")
