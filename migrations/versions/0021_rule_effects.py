"""rule effects: the tickets a rule's suggestion was shown on or held out from, and outcomes

Revision ID: 0021
Revises: 0022
Create Date: 2026-12-04 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rule_exposures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("segment", sa.String(length=40), nullable=False),
        sa.Column("held_out", sa.Boolean(), nullable=False),
        sa.Column("exception_key", sa.String(length=40), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("repeat_contact_7d", sa.Boolean(), nullable=True),
        sa.Column("ordered_30d", sa.Boolean(), nullable=True),
        sa.Column("ordered_90d", sa.Boolean(), nullable=True),
        sa.Column("spend_90d_cents", sa.BigInteger(), nullable=True),
        sa.Column("lapsed_180d", sa.Boolean(), nullable=True),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.Column("outcomes_final", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outcomes_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["installation_id"], ["installations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rule_id"], ["rules.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installation_id", "ticket_id", "rule_id"),
    )
    op.create_index(
        "ix_rule_exposures_installation_rule_seen",
        "rule_exposures",
        ["installation_id", "rule_id", "seen_at"],
    )
    op.create_index("ix_rule_exposures_pending", "rule_exposures", ["outcomes_final", "id"])
    op.create_index(
        "ix_rule_exposures_requester",
        "rule_exposures",
        ["installation_id", "rule_id", "requester_id", "seen_at"],
    )
    op.create_index(
        "ix_seen_tickets_installation_requester",
        "seen_tickets",
        ["installation_id", "requester_id", "first_seen_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_seen_tickets_installation_requester", table_name="seen_tickets")
    op.drop_index("ix_rule_exposures_requester", table_name="rule_exposures")
    op.drop_index("ix_rule_exposures_pending", table_name="rule_exposures")
    op.drop_index("ix_rule_exposures_installation_rule_seen", table_name="rule_exposures")
    op.drop_table("rule_exposures")
