"""A view finds a customer's rows by the customer's own key, on SQLite without statistics too.

SQLite's planner, with no `ANALYZE` statistics, takes any index whose first column a query tests
for equality; `installation_id = ? AND customer_id = ?` can then walk the installation's
index, every order or fact of every customer (0.5 ms a query at 5,000 orders, a hundred times
that at a million). Each statement of a whole view (the launch and `/sidebar/view`) is
explained here as SQLite would run it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin import db
from plugin.domain.rules import MAX_CAP_DAYS
from plugin.models import Action, Customer, Installation
from tests.goodwill.test_views import MARGARET, TYLER, form_of, open_ticket_of, suggestions, text_of
from tests.sidebar.test_sync import bearer, settle  # noqa: F401 (a fixture)
from tests.sidebar.test_views import demo_token, launch

# Tables with a row per customer (or many), and rows per customer looked up in each view;
# and the action log, whose rows a view looks up by ticket, customer and requester.
PER_CUSTOMER = ("orders", "customer_facts", "customer_segments", "customers", "actions")
WALKS_THE_INSTALLATION = re.compile(
    rf"(SCAN ({'|'.join(PER_CUSTOMER)})\b(?! USING INTEGER PRIMARY KEY))"
    rf"|(SEARCH ({'|'.join(PER_CUSTOMER)}) USING (COVERING )?INDEX \S+ \(installation_id=\?\))"
)


@contextmanager
def statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    engine = db.database(app).engine
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)


def _view_and_reads(
    app: Flask, client: FlaskClient, headers: dict[str, str], name: str = MARGARET
) -> tuple[str, list[tuple[str, Any]]]:
    """The customer's open ticket's view, and its SELECTs, its writes settled."""
    with statements(app) as seen:
        answer = client.get(
            "/sidebar/view", query_string={"ticket_id": open_ticket_of(name)}, headers=headers
        )
        settle(app)
    assert answer.status_code == 200
    return answer.get_data(as_text=True), seen


def _first_view_reads(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> list[tuple[str, Any]]:
    """The SELECTs of Margaret's open ticket's view, its writes settled."""
    return _view_and_reads(app, client, headers)[1]


def test_no_statement_of_a_view_walks_an_installations_customers_rows(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    seen = _first_view_reads(app, client, bearer)
    assert len(seen) > 5, "the view read the database"
    engine = db.database(app).engine
    assert engine.dialect.name == "sqlite"
    walks = []
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        for statement, parameters in seen:
            plan = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            lines = " | ".join(str(row[-1]) for row in plan)
            if WALKS_THE_INSTALLATION.search(lines):
                walks.append(f"{lines}\n    {' '.join(statement.split())[:300]}")
    assert not walks, "\n".join(walks)


def test_a_launch_reads_its_installation_once(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    """The installation the token names is the one the page is served for: not read again."""
    token = demo_token(app, demo_installation)
    with statements(app) as seen:
        answer = launch(client, token)
    assert answer.status_code == 200
    reads = [text for text, _ in seen if " FROM installations " in " ".join(text.split())]
    assert len(reads) == 1, reads


def test_a_tickets_first_view_reads_each_kind_of_row_once(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    """The customer's orders and facts once for every card, in one statement
    (`stored_orders_and_facts_of`); no gestures without actions."""
    seen = _first_view_reads(app, client, bearer)
    texts = [" ".join(text.split()) for text, _ in seen]
    orders = [text for text in texts if " FROM orders " in text]
    facts = [text for text in texts if " FROM customer_facts " in text]
    assert len(orders) == 1, texts
    assert facts == orders, texts
    # What each statement reads first: the table of its first selected column.
    first = [re.findall(r"^SELECT (?:DISTINCT )?(\w+)\.", text)[:1] for text in texts]
    assert ["gestures"] not in first, texts


def test_a_view_reads_the_tickets_actions_only_when_it_has_some(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    """One statement tells the rule book's revision and whether the ticket has actions or a
    review (`ticket_state`); the actions are read, and shown done, once there are some."""
    ticket_actions = re.compile(r"^SELECT actions\.id, actions\.installation_id")
    seen = _first_view_reads(app, client, bearer)
    texts = [" ".join(text.split()) for text, _ in seen]
    assert not any(ticket_actions.match(text) for text in texts), texts
    assert not any(text.startswith("SELECT installations.rule_book_revision") for text in texts)
    html = suggestions(client, bearer, MARGARET).get_data(as_text=True)
    fields = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}
    assert client.post("/sidebar/actions", data=fields, headers=bearer).status_code == 200
    view, seen = _view_and_reads(app, client, bearer)
    assert any(ticket_actions.match(" ".join(text.split())) for text, _ in seen)
    assert "Applied: $18 Expedited shipping upgrade · just now" in text_of(view)
    assert 'class="rg-offer" data-exception="expedited_shipping"' not in view


def test_grants_are_read_only_for_a_customer_who_had_some(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    """Whether the customer had grants within the longest cap is in the ticket's state: the
    grants are read, and the goodwill line says them, only when there are some."""
    grants = re.compile(r"^SELECT actions\.exception_key, coalesce")
    # Tyler's grants made older than any cap looks back.
    tyler = session.scalars(sa.select(Customer).where(Customer.name == TYLER)).one()
    session.execute(
        sa.update(Action)
        .where(Action.customer_id == tyler.id)
        .values(created_at=Action.created_at - timedelta(days=MAX_CAP_DAYS + 1))
    )
    session.commit()
    for name, read, said in (
        (MARGARET, True, "Goodwill: $38 granted in the last 90 days"),
        (TYLER, False, "Goodwill: Nothing granted in the last 90 days"),
    ):
        view, seen = _view_and_reads(app, client, bearer, name)
        assert any(grants.match(" ".join(text.split())) for text, _ in seen) is read, name
        assert said in text_of(view)
