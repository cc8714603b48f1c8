"""On PostgreSQL, store a batch of orders through a staging table: COPY, then set-based SQL.

The batch is copied (binary COPY) into a temporary table, and one statement looks each staged
order's customer up (an index probe per line), finds the order if it exists (by join),
inserts the new orders (`INSERT ... SELECT`, in the batch's order) and reads back what
became of each line (created, updated, unchanged, or refused for want of its customer), with
the customers touched and the changed orders, which `store` updates through the session as
the Python path does (rare in a bulk load; the session's hooks see the write). Instead of a
lookup of the customers and one of the orders, each answered with thousands of keys, and a
COPY: one round trip for the COPY, one for the rest. `store.store_orders` matches the same
records in Python on other databases and for small batches; both decide every line alike
(`tests/customers/test_staged_orders.py` compares them on the same files).

The staging table is a session's temporary table (never logged), created on a connection's
first batch and emptied before each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from plugin.customers.records import OrderRecord

# Smaller batches (a pushed order) keep the plain path: a few lookups cost less than the
# staging table's extra statements.
STAGED_MIN_ROWS = 20

_COPY = (
    "COPY regulars_order_staging (pos, external_id, customer_external_id, lookup_email,"
    " placed_at, amount_cents, discount_code, category, status, fulfillment_status,"
    " tracking_url, item_count) FROM STDIN (FORMAT BINARY)"
)
# The staged columns' types, for COPY's binary format: cheaper to write and to read than text
# (10,000 orders: about 6 ms instead of 13-21 ms).
_COPY_TYPES = (
    *("int4", "text", "text", "text", "timestamp", "int8"),
    *("text", "text", "text", "text", "text", "int4"),
)
_CREATE = """
CREATE TEMPORARY TABLE IF NOT EXISTS regulars_order_staging (
    pos integer NOT NULL,
    external_id text NOT NULL,
    customer_external_id text,
    lookup_email text,
    placed_at timestamp without time zone NOT NULL,
    amount_cents bigint NOT NULL,
    discount_code text,
    category text,
    status text,
    fulfillment_status text,
    tracking_url text,
    item_count integer
)
"""
_MERGE = """
WITH resolved AS MATERIALIZED (
    -- Each customer looked up by its key, one index probe per line (a join would hash the
    -- installation's customers for every batch): by company id, else the oldest customer
    -- with the email.
    SELECT st.*, coalesce(
        (
            SELECT c.id FROM customers c
            WHERE c.installation_id = %(installation_id)s
                AND c.external_id = st.customer_external_id
        ),
        (
            SELECT min(c.id) FROM customers c
            WHERE c.installation_id = %(installation_id)s AND c.email = st.lookup_email
        )
    ) AS cid
    FROM regulars_order_staging st
),
staged AS MATERIALIZED (
    SELECT r.pos, r.external_id, r.placed_at, r.amount_cents, r.discount_code,
           r.category, r.status, r.fulfillment_status, r.tracking_url, r.item_count, r.cid,
           o.id AS order_id, o.customer_id AS old_cid,
           (o.customer_id, o.placed_at, o.amount_cents, o.discount_code, o.category,
            o.status, o.fulfillment_status, o.tracking_url, o.item_count)
           IS NOT DISTINCT FROM
           (r.cid, r.placed_at, r.amount_cents, r.discount_code,
            r.category, r.status, r.fulfillment_status, r.tracking_url, r.item_count)
           AS same
    FROM resolved r
    LEFT JOIN orders o
        ON o.installation_id = %(installation_id)s AND o.external_id = r.external_id
),
inserted AS (
    INSERT INTO orders (
        installation_id, external_id, source, customer_id, placed_at, amount_cents,
        discount_code, category, status, fulfillment_status, tracking_url, item_count
    )
    SELECT %(installation_id)s, external_id, %(source)s, cid, placed_at, amount_cents,
        discount_code, category, status, fulfillment_status, tracking_url, item_count
    FROM staged WHERE cid IS NOT NULL AND order_id IS NULL
    ORDER BY pos
)
SELECT
    array_agg(pos ORDER BY pos) FILTER (WHERE cid IS NULL),
    count(*) FILTER (WHERE cid IS NOT NULL AND order_id IS NULL),
    count(*) FILTER (WHERE cid IS NOT NULL AND order_id IS NOT NULL AND NOT same),
    count(*) FILTER (WHERE cid IS NOT NULL AND same),
    array_agg(DISTINCT cid) FILTER (WHERE cid IS NOT NULL),
    array_agg(DISTINCT cid) FILTER (WHERE cid IS NOT NULL AND (order_id IS NULL OR NOT same)),
    array_agg(DISTINCT old_cid) FILTER (
        WHERE cid IS NOT NULL AND order_id IS NOT NULL AND NOT same
    ),
    array_agg(DISTINCT cid) FILTER (WHERE cid IS NOT NULL AND same),
    array_agg(order_id ORDER BY pos) FILTER (
        WHERE cid IS NOT NULL AND order_id IS NOT NULL AND NOT same
    ),
    array_agg(pos ORDER BY pos) FILTER (
        WHERE cid IS NOT NULL AND order_id IS NOT NULL AND NOT same
    ),
    array_agg(cid ORDER BY pos) FILTER (
        WHERE cid IS NOT NULL AND order_id IS NOT NULL AND NOT same
    )
FROM staged
"""


@dataclass
class StagedFates:
    """What a staged batch did: the counts, the refused records' positions, the customers."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[int] = field(default_factory=list)
    # The customers found for the records, those of created or changed orders (with a
    # changed order's previous customer), and those of unchanged orders.
    named: set[int] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)
    unchanged_customers: set[int] = field(default_factory=set)
    # The changed orders, (order id, position, customer id) in the batch's order: updated by
    # the caller, through the session as the Python path does (its hooks see the write).
    changed: list[tuple[int, int, int]] = field(default_factory=list)


def applies(session: Session, records: Sequence[OrderRecord]) -> bool:
    """True if this batch goes through the staging table: PostgreSQL through psycopg, a
    batch of at least STAGED_MIN_ROWS, each order named once (a later record for the same
    order in one batch updates what an earlier one created, which the Python path does)."""
    if len(records) < STAGED_MIN_ROWS:
        return False
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return False
    return len({record.external_id for record in records}) == len(records)


def store(
    session: Session, installation_id: int, records: Sequence[OrderRecord], *, source: str
) -> StagedFates:
    """COPY the batch into the staging table and merge it into the orders; see the module."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    # The email is looked up, as the Python path does, for a record without a company id,
    # and for one whose company id is not found if another record of the batch names that
    # email alone.
    emails = {r.customer_email for r in records if r.customer_external_id is None}
    with driver.cursor() as cursor:
        cursor.execute(_CREATE)
        cursor.execute("TRUNCATE regulars_order_staging")
        with cursor.copy(_COPY) as copy:
            copy.set_types(list(_COPY_TYPES))
            for pos, r in enumerate(records):
                copy.write_row(
                    (
                        pos,
                        r.external_id,
                        r.customer_external_id,
                        r.customer_email if r.customer_email in emails else None,
                        r.placed_at,
                        r.amount_cents,
                        r.discount_code,
                        r.category,
                        r.status,
                        r.fulfillment_status,
                        r.tracking_url,
                        r.item_count,
                    )
                )
        cursor.execute(_MERGE, {"installation_id": installation_id, "source": source})
        row = cursor.fetchone()
    assert row is not None
    refused, created, updated, unchanged, named, touched, old, same, *changed = row
    return StagedFates(
        created=created,
        updated=updated,
        unchanged=unchanged,
        refused=refused or [],
        named=set(named or ()),
        touched=set(touched or ()) | set(old or ()),
        unchanged_customers=set(same or ()),
        changed=list(zip(*(column or () for column in changed), strict=True)),
    )
