"""reviews: account review checklists and their progress per ticket

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:05:00.000000

Review actions join the action log: `actions` gains the checklist and item a review action
names (nullable; exception actions leave them empty, and review actions store "" as their
exception key, so the exceptions code reads the log as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _installation_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["installation_id"],
        ["installations.id"],
        name=op.f(f"fk_{table}_installation_id_installations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "review_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _installation_fk("review_templates"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_templates")),
        sa.UniqueConstraint(
            "installation_id", "name", name=op.f("uq_review_templates_installation_id_name")
        ),
    )
    with op.batch_alter_table("review_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_templates_installation_id"), ["installation_id"], unique=False
        )

    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("help_text", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        _installation_fk("review_items"),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["review_templates.id"],
            name=op.f("fk_review_items_template_id_review_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index("ix_review_items_template", ["template_id", "position"], unique=False)

    op.create_table(
        "account_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("completed_by", sa.String(length=64), nullable=True),
        _installation_fk("account_reviews"),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["review_templates.id"],
            name=op.f("fk_account_reviews_template_id_review_templates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_account_reviews_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_reviews")),
        sa.UniqueConstraint(
            "installation_id",
            "ticket_id",
            name=op.f("uq_account_reviews_installation_id_ticket_id"),
        ),
    )
    with op.batch_alter_table("account_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_reviews_installation_started",
            ["installation_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "review_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("checked_by", sa.String(length=64), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        _installation_fk("review_checks"),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["account_reviews.id"],
            name=op.f("fk_review_checks_review_id_account_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_items.id"],
            name=op.f("fk_review_checks_item_id_review_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_checks")),
        sa.UniqueConstraint(
            "review_id", "item_id", name=op.f("uq_review_checks_review_id_item_id")
        ),
    )

    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_template_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_item_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_actions_review_template_id_review_templates"),
            "review_templates",
            ["review_template_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_actions_review_item_id_review_items"),
            "review_items",
            ["review_item_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_actions_review_item_id_review_items"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_actions_review_template_id_review_templates"), type_="foreignkey"
        )
        batch_op.drop_column("review_item_id")
        batch_op.drop_column("review_template_id")
    op.drop_table("review_checks")
    with op.batch_alter_table("account_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_account_reviews_installation_started")
    op.drop_table("account_reviews")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_template")
    op.drop_table("review_items")
    with op.batch_alter_table("review_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_templates_installation_id"))
    op.drop_table("review_templates")
