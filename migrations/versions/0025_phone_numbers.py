"""phone numbers: a default phone region per installation; stored phones re-keyed to E.164

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 16:30:00.000000

Customers' phones were `+` and digits as typed (`0015555550101`, `5555550101`); they become
E.164 (`+15555550101`) read in their installation's region, the way lookups now read a
caller's number. A stored number that is not a possible one there is left as it is and
counted in the log (by installation, never the number), not guessed.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from plugin.domain.phones import DEFAULT_REGION, phone_key_or_none, region_or_default

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
log = logging.getLogger("alembic.runtime.migration")

_installations = sa.table(
    "installations", sa.column("id", sa.Integer), sa.column("default_phone_region", sa.String)
)
_customers = sa.table(
    "customers",
    sa.column("id", sa.Integer),
    sa.column("installation_id", sa.Integer),
    sa.column("phone", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_phone_region", sa.String(length=2), nullable=True))
    rekeyed, left = rekey_phones(op.get_bind())
    log.info("Phone numbers re-keyed to E.164: %d", rekeyed)
    for installation_id, count in sorted(left.items()):
        log.warning(
            "Installation %d: %d stored phone numbers are not phone numbers in its region; "
            "left as they were (they match no caller)",
            installation_id,
            count,
        )


def rekey_phones(connection: sa.Connection) -> tuple[int, dict[int, int]]:
    """Re-key every stored phone, a batch of rows at a time by id; return how many changed and,
    per installation, how many could not be read as a number."""
    regions = {
        row.id: region_or_default(row.default_phone_region)
        for row in connection.execute(sa.select(_installations))
    }
    rekeyed = 0
    left: dict[int, int] = {}
    after = 0
    while True:
        rows = connection.execute(
            sa.select(_customers.c.id, _customers.c.installation_id, _customers.c.phone)
            .where(_customers.c.id > after, _customers.c.phone.is_not(None))
            .order_by(_customers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return rekeyed, left
        after = rows[-1].id
        changes = []
        for row in rows:
            key = phone_key_or_none(row.phone, regions.get(row.installation_id, DEFAULT_REGION))
            if key is None:
                left[row.installation_id] = left.get(row.installation_id, 0) + 1
            elif key != row.phone:
                changes.append({"row_id": row.id, "key": key})
        if changes:
            connection.execute(
                sa.update(_customers)
                .where(_customers.c.id == sa.bindparam("row_id"))
                .values(phone=sa.bindparam("key")),
                changes,
            )
            rekeyed += len(changes)


def downgrade() -> None:
    # The E.164 keys stay: the old `+` and digits form read them as it reads any number.
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_column("default_phone_region")
