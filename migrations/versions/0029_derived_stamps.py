"""customer_segments.derived_stamp: what a customer's segment and order facts were derived from

Written with the row (rules and thresholds fingerprint, as-of moment, digest of the customer's
orders), so `segments recompute` can skip a customer whose derived rows it would write again
unchanged, such as right after an orders import that profiled everyone.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows already stored have no stamp: the next recompute rebuilds them.
    op.add_column("customer_segments", sa.Column("derived_stamp", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_segments", schema=None) as batch_op:
        batch_op.drop_column("derived_stamp")
