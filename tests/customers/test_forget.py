"""Forgetting a customer: nothing of them is left in any table or cache; the counts still add up."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.console import privacy_views
from plugin.customers.forget import (
    Identifier,
    IdentifierKind,
    drop_cached_answers,
    forget_customer,
    identifier_hash,
)
from plugin.helpdesks.runtime import Helpdesks
from plugin.models import (
    AccountReview,
    Action,
    Base,
    Customer,
    DataErasure,
    Delivery,
    Installation,
    Order,
    ReviewTemplate,
    Rule,
    RuleExposure,
    SeenTicket,
    SharedCacheEntry,
)
from tests.clock import FakeClock
from tests.console.test_views import AGENT, console_session
from tests.goodwill.console_world import SUPERVISOR, bearer_for
from tests.reports.exposures import exposure

KEY = "a-secret-key-for-the-audit-hash-0123456789"


def personal_columns() -> list[sa.Column[object]]:
    """Every text or JSON column of every table the service has."""
    return [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.String | sa.Text | sa.JSON)
    ]


def rows_holding(session: Session, needle: str) -> list[str]:
    """Where `needle` occurs (case-insensitive), as table.column, in the whole database."""
    found = []
    for column in personal_columns():
        text = sa.func.lower(sa.cast(column, sa.Text))
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(column.table)
            .where(text.contains(needle.lower()))
        )
        if count:
            found.append(f"{column.table.name}.{column.name}")
    return found


def the_customer(session: Session, installation: Installation) -> Customer:
    """The demo customer with the most orders who has an email, a phone and a helpdesk id."""
    return session.scalars(
        sa.select(Customer)
        .join(Order, Order.customer_id == Customer.id)
        .where(
            Customer.installation_id == installation.id,
            Customer.email.is_not(None),
            Customer.phone.is_not(None),
            Customer.helpdesk_user_id.is_not(None),
        )
        .group_by(Customer.id)
        .order_by(sa.func.count(Order.id).desc(), Customer.id)
        .limit(1)
    ).one()


def grants_by_budget(session: Session, installation: Installation) -> Counter[tuple[object, ...]]:
    totals: Counter[tuple[object, ...]] = Counter()
    for field, value, kind, cents in session.execute(
        sa.select(Action.budget_field, Action.budget_value, Action.kind, Action.amount_cents).where(
            Action.installation_id == installation.id
        )
    ):
        totals[(field, value, kind)] += cents or 0
    return totals


def leave_traces(session: Session, installation: Installation, customer: Customer) -> None:
    """What the sidebar, the agents and the caches keep about a customer besides their record."""
    now = utcnow()
    requester = customer.helpdesk_user_id or ""
    session.add(
        SeenTicket(
            installation_id=installation.id,
            ticket_id="990001",
            requester_id=requester,
            customer_id=customer.id,
            subject=f"Where is my order? {customer.name}",
            channel="email",
            tags=["vip"],
            first_seen_at=now,
            last_seen_at=now,
        )
    )
    rule = session.scalars(sa.select(Rule).where(Rule.installation_id == installation.id)).first()
    assert rule is not None
    session.add(
        exposure(
            installation.id,
            rule.id,
            "990001",
            requester_id=requester,
            customer_id=customer.id,
            seen_at=now,
        )
    )
    action = Action(
        installation_id=installation.id,
        ticket_id="990001",
        requester_id=requester,
        customer_id=customer.id,
        agent_id=AGENT,
        kind="applied",
        exception_key="shipping_refund",
        amount_cents=1250,
        currency="USD",
        text=f"Spoke to {customer.name} on {customer.phone}",
        budget_field="tier",
        budget_value="high",
        idempotency_key="forget-test-1",
        created_at=now,
    )
    session.add(action)  # its delivery row comes with it, pending: an unsent note
    template = session.scalars(
        sa.select(ReviewTemplate).where(ReviewTemplate.installation_id == installation.id)
    ).first()
    if template is not None:
        session.add(
            AccountReview(
                installation_id=installation.id,
                ticket_id="990001",
                template_id=template.id,
                requester_id=requester,
                customer_id=customer.id,
            )
        )
    for key, value in (
        (
            f"requester:{requester}",
            {"requester": {"id": requester, "name": customer.name, "email": customer.email}},
        ),
        ("ticket:990001", {"subject": "hello", "requester_email": customer.email}),
        ("requester:someone-else", {"requester": {"id": "someone-else", "name": "Zed Other"}}),
    ):
        session.add(
            SharedCacheEntry(installation_id=installation.id, key=key, value=value, fetched_at=now)
        )
    session.commit()


def test_after_forgetting_nothing_of_the_customer_is_left_and_the_counts_still_add_up(
    app: Flask, session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    email, phone, name = customer.email or "", customer.phone or "", customer.name
    leave_traces(session, demo_installation, customer)
    other = session.scalars(
        sa.select(Customer)
        .where(Customer.installation_id == demo_installation.id, Customer.id != customer.id)
        .where(Customer.email.is_not(None))
        .order_by(Customer.id)
        .limit(1)
    ).one()
    others_orders = session.scalar(sa.select(sa.func.count()).where(Order.customer_id == other.id))
    customers_before = session.execute(
        sa.select(sa.func.count()).select_from(Customer)
    ).scalar_one()
    actions_before = session.scalar(sa.select(sa.func.count()).select_from(Action))
    grants_before = grants_by_budget(session, demo_installation)
    for needle in (email, phone, name):
        assert rows_holding(session, needle), f"the test leaves {needle!r} somewhere"
    # This process's caches hold the helpdesk's answer about them too.
    shared: Helpdesks = app.extensions["regulars.helpdesks"]
    answer = {"name": name, "email": email}
    with app.app_context():
        shared.cache.lookup(
            (demo_installation.id, "requester", customer.helpdesk_user_id),
            lambda: answer,
            fresh_for=600,
        ).result(time.monotonic() + 5)
        shared.shop_synced[(demo_installation.id, "shop", email)] = utcnow()

    forgotten = forget_customer(
        session,
        demo_installation,
        Identifier.of("email", email.upper(), phone_region="US"),
        requested_by="helpdesk user 80004",
        via="console",
        audit_key=KEY,
        now=utcnow(),
    )
    session.commit()
    drop_cached_answers(shared.cache, demo_installation.id, synced=shared.shop_synced)

    session.expire_all()
    for needle in (email, phone, name):
        assert rows_holding(session, needle) == [], needle
    assert len(shared.cache) == 0
    assert not any(email in str(key) for key in shared.shop_synced)
    # Other customers untouched, the action rows kept and the budgets' sums unchanged.
    assert session.get(Customer, other.id) is not None
    assert session.scalar(sa.select(sa.func.count()).where(Order.customer_id == other.id)) == (
        others_orders
    )
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == customers_before - 1
    assert session.scalar(sa.select(sa.func.count()).select_from(Action)) == actions_before
    assert grants_by_budget(session, demo_installation) == grants_before
    assert session.scalar(
        sa.select(SharedCacheEntry.key).where(SharedCacheEntry.key == "requester:someone-else")
    )
    # The unsent note now says nothing of them; its delivery is still on its way.
    action = session.scalars(
        sa.select(Action).where(Action.idempotency_key == "forget-test-1")
    ).one()
    assert (action.text, action.customer_id) == ("", None)
    assert action.requester_id == f"forgotten-{forgotten.erasure_id}"
    assert session.get(Delivery, action.id).status == "pending"  # type: ignore[union-attr]
    # The audit says who, how and how much, and holds the identifier only as a keyed hash.
    erasure = session.get(DataErasure, forgotten.erasure_id)
    assert erasure is not None
    assert (erasure.via, erasure.requested_by, erasure.identifier_kind) == (
        "console",
        "helpdesk user 80004",
        "email",
    )
    assert erasure.identifier_hash == identifier_hash(
        Identifier(IdentifierKind.EMAIL, email.lower()), key=KEY
    )
    assert erasure.counts["customers"] == 1 and erasure.counts["orders"] > 0
    assert erasure.counts["seen_tickets"] >= 1 and erasure.counts["cached_answers"] == 2


def test_forgetting_is_scoped_to_the_installation(
    session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    customer_id = customer.id
    elsewhere = Installation(platform="zendesk", account="elsewhere", display_name="Elsewhere")
    session.add(elsewhere)
    session.flush()
    twin = Customer(
        installation_id=elsewhere.id, email=customer.email, phone=customer.phone, name="Twin"
    )
    session.add(twin)
    session.commit()

    forget_customer(
        session,
        elsewhere,
        Identifier.of("phone", customer.phone or "", phone_region="US"),
        requested_by="command line (ops)",
        via="cli",
        audit_key=KEY,
        now=utcnow(),
    )
    session.commit()

    assert session.get(Customer, customer_id) is not None
    assert session.scalar(sa.select(sa.func.count()).where(Customer.id == twin.id)) == 0


def test_the_command_line_forgets_by_company_id_after_confirmation(
    app: Flask, session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    customer_id = customer.id
    customer.external_id = "C-10042"
    session.commit()
    runner = app.test_cli_runner()
    name = f"{demo_installation.platform}:{demo_installation.account}"
    args = ["data", "forget", "--installation", name, "--company-id", "C-10042"]

    declined = runner.invoke(args=args, input="n\n")
    assert declined.exit_code == 1, declined.output
    assert session.get(Customer, customer_id) is not None

    result = runner.invoke(args=[*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert "customers: 1" in result.output
    session.expire_all()
    assert session.get(Customer, customer_id) is None
    assert session.scalar(sa.select(DataErasure.via)) == "cli"


def test_the_command_line_wants_exactly_one_identifier(
    app: Flask, demo_installation: Installation
) -> None:
    runner = app.test_cli_runner()
    name = f"{demo_installation.platform}:{demo_installation.account}"
    result = runner.invoke(args=["data", "forget", "--installation", name])
    assert result.exit_code == 2
    assert "exactly one of" in result.output


def test_the_console_asks_again_before_it_forgets(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    customer_id = customer.id
    headers = {"Authorization": f"Bearer {console_session(app, client, demo_installation)}"}
    form = {"kind": "email", "value": customer.email or ""}

    asked = client.post("/console/forget", data=form, headers=headers)
    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert customer.name in html and 'name="confirm" value="yes"' in html
    assert session.get(Customer, customer_id) is not None

    done = client.post("/console/forget", data=form | {"confirm": "yes"}, headers=headers)
    assert done.status_code == 200
    assert "Forgotten (audit record" in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(Customer, customer_id) is None
    assert "helpdesk user 80004 (console)" in client.get(
        "/console/forget", headers=headers
    ).get_data(as_text=True)


def test_only_an_admin_may_forget(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    customer_id = customer.id
    supervisor = bearer_for(app, client, demo_installation, SUPERVISOR)
    form = {"kind": "email", "value": customer.email or "", "confirm": "yes"}
    assert client.get("/console/forget", headers=supervisor).status_code == 403
    assert client.post("/console/forget", data=form, headers=supervisor).status_code == 403
    assert client.post("/console/forget", data=form).status_code == 401
    session.expire_all()
    assert session.get(Customer, customer_id) is not None


def test_an_empty_identifier_is_refused_with_a_message(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    headers = {"Authorization": f"Bearer {console_session(app, client, demo_installation)}"}
    answer = client.post("/console/forget", data={"kind": "phone", "value": " "}, headers=headers)
    assert answer.status_code == 400
    assert "No phone was given." in answer.get_data(as_text=True)
    unknown = client.post("/console/forget", data={"kind": "nope", "value": "1"}, headers=headers)
    assert unknown.status_code == 400


def test_the_seen_ticket_left_for_outcomes_is_kept_anonymous(
    session: Session, demo_installation: Installation
) -> None:
    customer = the_customer(session, demo_installation)
    leave_traces(session, demo_installation, customer)
    forget_customer(
        session,
        demo_installation,
        Identifier.of("email", customer.email or "", phone_region="US"),
        requested_by="x",
        via="cli",
        audit_key=KEY,
        now=utcnow() + timedelta(seconds=1),
    )
    session.commit()
    seen = session.scalars(sa.select(SeenTicket).where(SeenTicket.ticket_id == "990001")).one()
    assert seen.subject == "" and seen.customer_id is None
    assert seen.requester_id.startswith("forgotten-")
    # The effects report keeps its count of the exposure, about nobody.
    exposure = session.scalars(
        sa.select(RuleExposure).where(RuleExposure.ticket_id == "990001")
    ).one()
    assert (exposure.requester_id, exposure.customer_id) == (seen.requester_id, None)


def test_a_process_drops_its_answers_of_an_installation_forgotten_in_another(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(privacy_views, "_clock", clock)
    shared: Helpdesks = app.extensions["regulars.helpdesks"]
    client.get("/healthz")  # the process notes the erasures made before it started
    with app.app_context():
        shared.cache.lookup(
            (demo_installation.id, "requester", "7001"), lambda: {"name": "Ann"}, fresh_for=600
        ).result(time.monotonic() + 5)
    # Another process (the command line) forgets someone in the installation.
    session.add(
        DataErasure(
            installation_id=demo_installation.id,
            via="cli",
            requested_by="command line (ops)",
            identifier_kind="email",
            identifier_hash="0" * 64,
            counts={},
        )
    )
    session.commit()

    client.get("/healthz")
    assert len(shared.cache) == 1  # not looked again yet: one query per process a while
    clock.advance(privacy_views.ERASURE_CHECK_SECONDS)
    client.get("/healthz")
    assert len(shared.cache) == 0
