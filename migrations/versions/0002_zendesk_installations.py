"""zendesk installations: app id, field mappings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("app_id", sa.String(length=64), nullable=True))
    op.create_table(
        "field_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fact_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["installation_id"],
            ["installations.id"],
            name=op.f("fk_field_mappings_installation_id_installations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_mappings")),
        sa.UniqueConstraint(
            "installation_id", "kind", "key", name=op.f("uq_field_mappings_installation_id_kind_key")
        ),
    )
    with op.batch_alter_table("field_mappings") as batch:
        batch.create_index(
            batch.f("ix_field_mappings_installation_id"), ["installation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("field_mappings") as batch:
        batch.drop_index(batch.f("ix_field_mappings_installation_id"))
    op.drop_table("field_mappings")
    with op.batch_alter_table("installations") as batch:
        batch.drop_column("app_id")
