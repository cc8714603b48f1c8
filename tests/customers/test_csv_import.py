"""Storing customer data: CSV import by line, merging across keys, idempotent re-imports.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers import csv_import
from plugin.customers.csv_import import ImportFileError, import_csv
from plugin.customers.records import customer_record, order_record
from plugin.customers.store import store_customers, store_order_rows, store_orders
from plugin.models import Customer, CustomerFact, Installation, Order

NOW = datetime(2026, 11, 24, 12, 0)

CUSTOMERS_CSV = """\
customer_id,name,email,phone,customer_since,loyalty_id
C-1,Priya Raman,priya@example.com,+1 555 555 0101,2021-04-05,L9
C-2,Walter Huang,walter@example.com,,2019-01-02,
,No Id,noid@example.com,,,
C-3,Bad Email,not-an-email,,,
C-4,"Quoted, Name",quoted@example.com,,,
"""

ORDERS_CSV = """\
order_id,customer_id,customer_email,placed_at,amount,discount_code,category
O-1,C-1,,2026-10-01,120.00,,Tea
O-2,C-1,,2026-11-01T09:30:00Z,80.50,WELCOME10,Coffee beans
O-3,,walter@example.com,2025-01-15,45.00,,Tea
O-4,C-9,,2026-11-01,10.00,,Tea
O-5,C-2,,someday,10.00,,Tea
"""


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.fixture
def installation(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(installation)
    session.commit()
    return installation


def run_import(session: Session, installation: Installation, kind: str, text: str):
    return import_csv(session, installation.id, io.StringIO(text), kind=kind, now=NOW)  # type: ignore[arg-type]


def test_customers_import_reports_bad_rows_by_line_and_stores_the_rest(
    session: Session, installation: Installation
) -> None:
    report = run_import(session, installation, "customers", CUSTOMERS_CSV)
    assert (report.rows, report.created, report.updated, report.unchanged) == (5, 3, 0, 0)
    assert [str(p) for p in report.problems] == [
        "line 4: customer_id: is required",
        "line 5: email: 'not-an-email' is not an email address",
    ]
    assert report.ignored_columns == ("loyalty_id",)
    names = session.scalars(sa.select(Customer.name).order_by(Customer.external_id)).all()
    assert names == ["Priya Raman", "Walter Huang", "Quoted, Name"]
    priya = session.scalars(sa.select(Customer).where(Customer.external_id == "C-1")).one()
    assert priya.phone == "+15555550101"


def test_reimporting_the_same_files_changes_nothing(
    session: Session, installation: Installation
) -> None:
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    run_import(session, installation, "orders", ORDERS_CSV)
    before = session.execute(sa.select(Order.external_id, Order.amount_cents)).all()
    customers = run_import(session, installation, "customers", CUSTOMERS_CSV)
    orders = run_import(session, installation, "orders", ORDERS_CSV)
    assert (customers.created, customers.updated, customers.unchanged) == (0, 0, 3)
    assert (orders.created, orders.updated, orders.unchanged) == (0, 0, 3)
    assert session.execute(sa.select(Order.external_id, Order.amount_cents)).all() == before
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 3


def test_orders_import_links_customers_and_refreshes_their_facts(
    session: Session, installation: Installation
) -> None:
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    report = run_import(session, installation, "orders", ORDERS_CSV)
    assert report.created == 3
    assert [str(p) for p in report.problems] == [
        "line 5: customer_id: no customer 'C-9': add the customer first",
        "line 6: placed_at: 'someday' is not a date or time like 2024-03-31 or "
        "2024-03-31T14:05:00Z",
    ]
    priya = session.scalars(sa.select(Customer).where(Customer.external_id == "C-1")).one()
    facts = {
        f.name: f.value
        for f in session.scalars(
            sa.select(CustomerFact).where(CustomerFact.customer_id == priya.id)
        )
    }
    assert facts["order_count"] == 2 and facts["total_spend_cents"] == 20050
    walter_orders = session.scalars(
        sa.select(Order).join(Customer).where(Customer.external_id == "C-2")
    ).all()
    assert [o.external_id for o in walter_orders] == ["O-3"]


def test_a_changed_row_updates_in_place(session: Session, installation: Installation) -> None:
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    run_import(session, installation, "orders", ORDERS_CSV)
    report = run_import(
        session,
        installation,
        "orders",
        "order_id,customer_id,placed_at,amount\nO-1,C-1,2026-10-01,150.00\n",
    )
    assert (report.created, report.updated) == (0, 1)
    assert session.scalar(sa.select(Order.amount_cents).where(Order.external_id == "O-1")) == 15000


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("name,email\nPriya,p@example.com\n", "missing: customer_id"),
    ],
)
def test_a_file_with_the_wrong_columns_imports_nothing(
    session: Session, installation: Installation, text: str, words: str
) -> None:
    with pytest.raises(ImportFileError, match=words):
        run_import(session, installation, "customers", text)
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_orders_file_needs_a_customer_and_an_amount_column(
    session: Session, installation: Installation
) -> None:
    with pytest.raises(ImportFileError, match="customer_id or a customer_email"):
        run_import(session, installation, "orders", "order_id,placed_at,amount\n")
    with pytest.raises(ImportFileError, match="amount or an amount_cents"):
        run_import(session, installation, "orders", "order_id,placed_at,customer_id\n")


def test_a_row_with_too_many_fields_is_refused(
    session: Session, installation: Installation
) -> None:
    report = run_import(
        session, installation, "customers", "customer_id,name\nC-1,A,extra\nC-2,B\n"
    )
    assert [str(p) for p in report.problems] == ["line 2: row: has more fields than the header"]
    assert report.created == 1


def test_batches_commit_as_they_go(session: Session, installation: Installation) -> None:
    rows = "".join(f"C-{n},Customer {n}\n" for n in range(25))
    report = import_csv(
        session,
        installation.id,
        io.StringIO("customer_id,name\n" + rows),
        kind="customers",
        now=NOW,
        batch_size=10,
    )
    assert report.created == 25


def test_a_customer_known_by_email_is_merged_not_duplicated(
    session: Session, installation: Installation
) -> None:
    # First seen through the helpdesk (no company id), then imported with the company's id.
    session.add(
        Customer(
            installation_id=installation.id,
            helpdesk_user_id="90001",
            email="priya@example.com",
            name="Priya",
        )
    )
    session.commit()
    result = store_customers(
        session,
        installation.id,
        [
            customer_record(
                {"customer_id": "C-1", "name": "Priya Raman", "email": "priya@example.com"},
                phone_region="US",
            )
        ],
        now=NOW,
    )
    assert (result.created, result.updated) == (0, 1)
    merged = session.scalars(sa.select(Customer)).one()
    assert (merged.external_id, merged.helpdesk_user_id, merged.name) == (
        "C-1",
        "90001",
        "Priya Raman",
    )


def test_a_different_company_id_is_a_different_customer_even_with_the_same_email(
    session: Session, installation: Installation
) -> None:
    store_customers(
        session,
        installation.id,
        [
            customer_record(
                {"customer_id": "C-1", "name": "A", "email": "shared@example.com"},
                phone_region="US",
            ),
            customer_record(
                {"customer_id": "C-2", "name": "B", "email": "shared@example.com"},
                phone_region="US",
            ),
        ],
        now=NOW,
    )
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2


def test_a_caller_is_matched_by_phone(session: Session, installation: Installation) -> None:
    store_customers(
        session,
        installation.id,
        [
            customer_record(
                {"customer_id": "C-1", "name": "A", "phone": "+1 555 555 0199"}, phone_region="US"
            )
        ],
        now=NOW,
    )
    result = store_customers(
        session,
        installation.id,
        [
            customer_record(
                {"customer_id": "C-1", "name": "A", "phone": "+1-555-555-0199"}, phone_region="US"
            )
        ],
        now=NOW,
    )
    assert result.unchanged == 1


def test_installations_never_see_each_others_customers(
    session: Session, installation: Installation
) -> None:
    other = Installation(platform="zendesk", account="other", display_name="Other")
    session.add(other)
    session.commit()
    store_customers(
        session,
        installation.id,
        [customer_record({"customer_id": "C-1", "name": "A"}, phone_region="US")],
        now=NOW,
    )
    store_customers(
        session,
        other.id,
        [customer_record({"customer_id": "C-1", "name": "B"}, phone_region="US")],
        now=NOW,
    )
    result = store_orders(
        session,
        other.id,
        [
            order_record(
                {"order_id": "O-1", "customer_id": "C-1", "placed_at": "2026-01-01", "amount": 5}
            )
        ],
        source="push",
        now=NOW,
    )
    assert result.created == 1
    owner = session.scalars(sa.select(Customer).join(Order)).one()
    assert (owner.installation_id, owner.name) == (other.id, "B")


def test_text_that_stops_being_utf8_keeps_the_rows_before_it(
    session: Session, installation: Installation
) -> None:
    good = "".join(f"C-{n},Customer {n}\n" for n in range(3000)).encode()
    raw = io.BytesIO(b"customer_id,name\n" + good + b"C-X,Caf\xe9\n")
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    report = import_csv(session, installation.id, stream, kind="customers", now=NOW)
    assert report.created >= 2000  # at least the batches decoded before the bad bytes
    assert report.problems[-1].field == "file"
    assert "not UTF-8" in report.problems[-1].message


def test_orders_import_their_status_tracking_and_item_count_and_refuse_bad_ones(
    session: Session, installation: Installation
) -> None:
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    text = (
        "order_id,customer_id,placed_at,amount,status,fulfillment_status,tracking_url,item_count\n"
        "O-1,C-1,2026-10-01,12.00,paid,fulfilled,https://tracking.example.com/1Z9,2\n"
        "O-2,C-1,2026-10-02,12.00,Pending,,,\n"
        "O-3,C-1,2026-10-03,12.00,shipped,,,\n"
        "O-4,C-1,2026-10-04,12.00,paid,fulfilled,javascript:alert(1),\n"
    )
    report = run_import(session, installation, "orders", text)
    assert report.created == 2 and report.ignored_columns == ()
    assert [str(p) for p in report.problems] == [
        "line 4: status: 'shipped' is not one of authorized, paid, partially_paid, "
        "partially_refunded, pending, refunded, voided",
        "line 5: tracking_url: must be an http:// or https:// link",
    ]
    rows = session.execute(
        sa.select(
            Order.external_id,
            Order.status,
            Order.fulfillment_status,
            Order.tracking_url,
            Order.item_count,
        ).order_by(Order.external_id)
    ).all()
    assert [tuple(row) for row in rows] == [
        ("O-1", "paid", "fulfilled", "https://tracking.example.com/1Z9", 2),
        ("O-2", "pending", None, None, None),
    ]
    # A status that moves on is an update in place.
    moved = run_import(
        session,
        installation,
        "orders",
        "order_id,customer_id,placed_at,amount,status\nO-2,C-1,2026-10-02,12.00,refunded\n",
    )
    assert (moved.created, moved.updated) == (0, 1)
    assert session.scalar(sa.select(Order.status).where(Order.external_id == "O-2")) == "refunded"


def test_an_import_commits_its_first_batches_sooner_so_their_rows_are_measured_early(
    session: Session, installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL plans a batch's lookups by the table's statistics, which say nothing of an
    # installation's rows until ANALYZE, after 1, 2, 4, 8... commits: the first commits come
    # after 1, 2, 4, 8 batches' rows, then every COMMIT_ROWS (SQLITE_COMMIT_ROWS on SQLite).
    monkeypatch.setattr(csv_import, "COMMIT_ROWS", 50)
    monkeypatch.setattr(csv_import, "SQLITE_COMMIT_ROWS", 50)
    stored_at_commits: list[int] = []
    measured = csv_import.analyze_as_they_grow

    def counted(session: Session, commits: int, tables: Any) -> None:
        if tables == ("customers",):
            stored_at_commits.append(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Customer)
                    .where(Customer.installation_id == installation.id)
                )
                or 0
            )
        measured(session, commits, tables)

    monkeypatch.setattr(csv_import, "analyze_as_they_grow", counted)
    lines = "".join(f"C-{n},Customer {n}\n" for n in range(170))
    report = import_csv(
        session,
        installation.id,
        io.StringIO("customer_id,name\n" + lines),
        kind="customers",
        now=NOW,
        batch_size=10,
    )
    assert report.created == 170
    assert stored_at_commits == [10, 20, 40, 80, 130, 170]


def test_an_orders_import_on_sqlite_checks_its_customers_per_transaction_not_per_row(
    storage_app: Flask,
    session: Session,
    installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("foreign keys are turned off on SQLite only")
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    checked_while_storing: list[int] = []
    real_store = store_order_rows

    def store(session: Session, *args: Any, **kwargs: Any) -> Any:
        checked_while_storing.append(session.execute(sa.text("PRAGMA foreign_keys")).scalar_one())
        return real_store(session, *args, **kwargs)

    monkeypatch.setattr(csv_import, "store_order_rows", store)
    report = run_import(session, installation, "orders", ORDERS_CSV)
    assert report.created == 3
    assert checked_while_storing == [0]
    # Back on for whoever uses the connection next, this session or another.
    assert session.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
    session.commit()
    with db.database(storage_app).sessions() as other:
        assert other.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1


def test_orders_written_for_a_customer_deleted_during_the_import_are_not_kept(
    session: Session, installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("foreign keys are turned off on SQLite only")
    run_import(session, installation, "customers", CUSTOMERS_CSV)
    real_store = store_order_rows

    def store_then_delete(session: Session, *args: Any, **kwargs: Any) -> Any:
        stored = real_store(session, *args, **kwargs)
        # As if deleted between the batch's lookup and its write: nothing cascades now.
        session.execute(sa.delete(Customer).where(Customer.external_id == "C-1"))
        return stored

    monkeypatch.setattr(csv_import, "store_order_rows", store_then_delete)
    with pytest.raises(csv_import.CustomerDeletedError):
        run_import(session, installation, "orders", ORDERS_CSV)
    assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 3
    assert session.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
