"""CSV files as people have them: every line's fate reported, encodings, delimiters, bad values.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers import push_tokens
from plugin.customers.csv_import import ImportReport, import_csv
from plugin.models import Customer, Installation, Order

NOW = datetime(2026, 11, 24, 12, 0)


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


def run(
    session: Session,
    installation: Installation,
    data: str | bytes,
    kind: str = "customers",
    **options: object,
) -> ImportReport:
    stream = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    return import_csv(session, installation.id, stream, kind=kind, now=NOW, **options)  # type: ignore[arg-type]


def names(session: Session) -> list[str]:
    return list(session.scalars(sa.select(Customer.name).order_by(Customer.external_id)))


def every_line_has_a_fate(report: ImportReport, text: str) -> None:
    lines = [line for line in text.splitlines()[1:] if line.strip()]
    assert report.imported + len(report.problems) == len(lines) == report.rows


UNBALANCED = (
    "customer_id,name,email\n"
    "C-1,Alice,alice@example.com\n"
    "C-2,Bob,bob@example.com\n"
    'H-3,"Carol Hidden,carol@example.com\n'
    "C-4,Dave,dave@example.com\n"
    'C-5,"Eve, Jr",eve@example.com\n'
    "C-6,Frank,frank@example.com\n"
)


def test_an_unbalanced_quote_refuses_its_line_alone(
    session: Session, installation: Installation
) -> None:
    report = run(session, installation, UNBALANCED)
    assert [(p.line, p.field) for p in report.problems] == [(4, "row")]
    assert "a quote opens on this line" in report.problems[0].message
    assert names(session) == ["Alice", "Bob", "Dave", "Eve, Jr", "Frank"]
    every_line_has_a_fate(report, UNBALANCED)


def test_a_quote_left_open_on_the_last_line_is_refused_there(
    session: Session, installation: Installation
) -> None:
    text = 'customer_id,name\nC-1,Alice\nC-2,"Bob\n'
    report = run(session, installation, text)
    assert [(p.line, p.field) for p in report.problems] == [(3, "row")]
    assert names(session) == ["Alice"]


def test_a_quote_that_closes_lines_later_swallows_nothing(
    session: Session, installation: Installation
) -> None:
    text = 'customer_id,name\nC-1,"Alice\nC-2,Bob\nC-3,Carol"\nC-4,Dave\n'
    report = run(session, installation, text)
    # A quote inside an unquoted field is a character, as every CSV reader reads it.
    assert [p.line for p in report.problems] == [2]
    assert names(session) == ["Bob", 'Carol"', "Dave"]
    every_line_has_a_fate(report, text)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_file_in_a_windows_encoding_is_read_and_says_so(
    session: Session, installation: Installation, encoding: str
) -> None:
    text = "customer_id,name\nC-1,Café Crème\nC-2,Zoë Müller\n"
    report = run(session, installation, text.encode(encoding))
    assert report.encoding == "Windows-1252"
    assert report.reading() == "Read as Windows-1252, columns separated by commas"
    assert names(session) == ["Café Crème", "Zoë Müller"]


def test_utf8_with_a_byte_order_mark(session: Session, installation: Installation) -> None:
    report = run(session, installation, "\ufeffcustomer_id,name\nC-1,Zoë\n".encode())
    assert (report.encoding, report.created, report.problems) == ("UTF-8", 1, [])


@pytest.mark.parametrize(("delimiter", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_semicolons_and_tabs_are_sniffed(
    session: Session, installation: Installation, delimiter: str, word: str
) -> None:
    d = delimiter
    text = f"customer_id{d}name{d}email\nC-1{d}Anna, Jr{d}a@example.com\n"
    report = run(session, installation, text.encode("cp1252"))
    assert (report.created, report.delimiter) == (1, delimiter)
    assert word in report.reading()
    assert names(session) == ["Anna, Jr"]


def test_a_wrong_header_says_how_it_was_read(session: Session, installation: Installation) -> None:
    with pytest.raises(ValueError, match="separated by semicolons"):
        run(session, installation, "id;full_name\nC-1;Anna\n")


def test_duplicate_ids_name_both_lines_and_the_first_wins(
    session: Session, installation: Installation
) -> None:
    text = "customer_id,name\nC-1,First\nC-2,Other\nC-1,Second\nC-3,Third\nC-1,Third time\n"
    report = run(session, installation, text, batch_size=1)
    assert [str(p) for p in report.problems] == [
        "line 4: customer_id: 'C-1' is also on line 2: line 2 was imported, this one refused",
        "line 6: customer_id: 'C-1' is also on line 2: line 2 was imported, this one refused",
    ]
    assert names(session) == ["First", "Other", "Third"]
    every_line_has_a_fate(report, text)


def test_duplicate_order_ids_in_one_batch(session: Session, installation: Installation) -> None:
    run(session, installation, "customer_id,name\nC-1,A\n")
    text = (
        "order_id,customer_id,placed_at,amount\n"
        "O-1,C-1,2026-01-01,5\nO-1,C-1,2026-02-01,6\nO-2,C-1,2026-03-01,7\n"
    )
    report = run(session, installation, text, "orders")
    assert [p.line for p in report.problems] == [3]
    assert report.created == 2


def test_future_and_out_of_range_dates_are_refused_by_line(
    session: Session, installation: Installation
) -> None:
    run(session, installation, "customer_id,name\nC-1,A\n")
    people = (
        "customer_id,name,customer_since\nC-2,B,2031-01-01\nC-3,C,2020-05-01\nC-4,D,0001-01-01\n"
    )
    report = run(session, installation, people)
    assert [(p.line, p.field) for p in report.problems] == [
        (2, "customer_since"),
        (4, "customer_since"),
    ]
    assert "in the future" in report.problems[0].message
    orders = (
        "order_id,customer_id,placed_at,amount\n"
        "O-1,C-1,9999-12-31T23:00:00-05:00,5\n"
        "O-2,C-1,0001-01-01T00:00+05:00,5\n"
        "O-3,C-1,9999-12-31,5\n"
        "O-4,C-1,2026-11-01,5\n"
    )
    report = run(session, installation, orders, "orders")
    assert [p.line for p in report.problems] == [2, 3, 4]
    assert "out of the calendar's range" in report.problems[0].message
    assert report.created == 1
    assert session.scalars(sa.select(Order.external_id)).all() == ["O-4"]


def test_a_customer_named_two_ways_is_refused_by_line_and_logs_no_customer_data(
    session: Session, installation: Installation, caplog: pytest.LogCaptureFixture
) -> None:
    run(session, installation, "customer_id,name,helpdesk_user_id\nC-7,Grace,500\n")
    text = (
        "customer_id,name,email,helpdesk_user_id\n"
        "C-1,Alice,alice@example.com,\n"
        "C-8,Heidi Secret,heidi.secret@example.com,500\n"
        "C-9,Ivan,ivan@example.com,\n"
    )
    with caplog.at_level(logging.DEBUG):
        report = run(session, installation, text)
    assert report.created == 2
    assert [str(p) for p in report.problems] == [
        "line 3: helpdesk_user_id: '500' belongs to customer 'C-7', not to 'C-8': change the "
        "customer_id or the helpdesk_user_id so they name one customer"
    ]
    assert "Heidi" not in caplog.text and "heidi.secret" not in caplog.text


def test_a_dry_run_reports_and_writes_nothing(session: Session, installation: Installation) -> None:
    report = run(session, installation, UNBALANCED, dry_run=True)
    assert (report.created, len(report.problems)) == (5, 1)
    assert "would be added" in report.summary() and "nothing was written" in report.summary()
    assert names(session) == []


def test_the_sql_of_a_failing_statement_shows_no_values(session: Session) -> None:
    with pytest.raises(sa.exc.IntegrityError) as raised:
        session.execute(
            sa.insert(Customer).values(
                installation_id=None, name="Secret Name", email="secret@example.com"
            )
        )
    session.rollback()
    # PostgreSQL's own DETAIL may quote a NOT NULL row; what SQLAlchemy adds never does.
    statement = str(raised.value).split("[SQL:", 1)[1]
    assert "[SQL parameters hidden" in statement
    assert "Secret Name" not in statement and "secret@example.com" not in statement


def test_the_cli_reports_encoding_delimiter_and_checks_without_writing(
    storage_app: Flask, installation: Installation, tmp_path: object, session: Session
) -> None:
    runner: FlaskCliRunner = storage_app.test_cli_runner()
    path = tmp_path / "kunden.csv"  # type: ignore[operator]
    path.write_bytes("customer_id;name\nC-1;Zoë\n".encode("cp1252"))
    args = ["data", "import", "customers", str(path), "--installation", "acme"]
    checked = runner.invoke(args=[*args, "--dry-run"])
    assert checked.exit_code == 0, checked.output
    assert "1 would be added" in checked.output
    assert "Read as Windows-1252, columns separated by semicolons" in checked.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
    imported = runner.invoke(args=args)
    assert imported.exit_code == 0 and "1 added" in imported.output
    assert names(session) == ["Zoë"]
    bad = tmp_path / "bad.csv"  # type: ignore[operator]
    bad.write_text('customer_id,name\nC-2,"Open\nC-3,Fine\n')
    refused = tmp_path / "refused.csv"  # type: ignore[operator]
    partly = runner.invoke(args=[*args[:3], str(bad), *args[4:], "--refused", str(refused)])
    assert partly.exit_code == 1
    assert refused.read_text().splitlines()[0] == "line,field,reason"
    assert refused.read_text().splitlines()[1].startswith('2,row,"a quote opens on this line')


def test_the_push_api_refuses_bad_bodies_with_4xx(
    storage_app: Flask, session: Session, installation: Installation
) -> None:
    client: FlaskClient = storage_app.test_client()
    token = push_tokens.issue(installation)
    session.commit()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deep = '{"customers": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = client.post("/api/v1/customers", data=deep, headers=headers)
    assert answer.status_code in (400, 413)
    for body in (
        '{"customers": [{"customer_id": "\\ud800", "name": "A"}]}',
        '{"orders": [{"order_id": "O-1", "customer_id": "C-1", "amount": 1,'
        ' "placed_at": "9999-12-31T23:00:00-05:00"}]}',
    ):
        path = "/api/v1/customers" if "customers" in body else "/api/v1/orders"
        answer = client.post(path, data=body, headers=headers)
        assert answer.status_code == 422, answer.get_data(as_text=True)
    client.post(
        "/api/v1/customers",
        json={"customers": [{"customer_id": "C-7", "name": "G", "helpdesk_user_id": "500"}]},
        headers=headers,
    )
    answer = client.post(
        "/api/v1/customers",
        json={"customers": [{"customer_id": "C-8", "name": "H", "helpdesk_user_id": "500"}]},
        headers=headers,
    )
    assert answer.status_code == 422
    assert answer.get_json()["problems"][0]["field"] == "helpdesk_user_id"
