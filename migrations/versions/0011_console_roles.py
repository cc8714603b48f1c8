"""console: roles and what supervisors edit; the ticket fields a rule replay reads

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supervisor_roles", sa.JSON(), nullable=True))
    with op.batch_alter_table("seen_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_type", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.create_index(
            "ix_seen_tickets_installation_last_seen",
            ["installation_id", "last_seen_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("seen_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_seen_tickets_installation_last_seen")
        batch_op.drop_column("tags")
        batch_op.drop_column("priority")
        batch_op.drop_column("ticket_type")
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_column("supervisor_roles")
