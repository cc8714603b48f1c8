"""helpdesk events: event sources, queued snapshot refreshes, deliveries taken

Revision ID: 0022
Revises: 0023
Create Date: 2026-12-04 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_sources",
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=1000), nullable=False),
        sa.Column("remote_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(), nullable=True),
        sa.Column("last_event_kind", sa.String(length=40), nullable=True),
        sa.Column("events_received", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("installation_id"),
    )
    op.create_table(
        "snapshot_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("needs_fetch", sa.Boolean(), nullable=False),
        sa.Column("tickets", sa.JSON(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installation_id", "requester_id"),
    )
    op.create_index("ix_snapshot_refreshes_queued_at", "snapshot_refreshes", ["queued_at"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installation_id", "digest"),
    )
    op.create_index("ix_event_deliveries_received_at", "event_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_received_at", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_index("ix_snapshot_refreshes_queued_at", table_name="snapshot_refreshes")
    op.drop_table("snapshot_refreshes")
    op.drop_table("event_sources")
