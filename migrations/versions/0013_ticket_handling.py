"""exceptions: a rule's ticket handling applied from the sidebar; the demo tickets' group

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handling", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("handling_value", sa.String(length=100), nullable=True))
    with op.batch_alter_table("demo_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_name", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("demo_tickets", schema=None) as batch_op:
        batch_op.drop_column("group_name")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_column("handling_value")
        batch_op.drop_column("handling")
