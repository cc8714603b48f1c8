"""A rule's ticket handling applied from the sidebar: recorded once, only while suggested, no
grant, and delivered to the (demo) ticket with its note; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.delivery import outbox as delivery
from plugin.delivery.notes import build_note, marker_for
from plugin.delivery.outbox import OutboxPolicy
from plugin.delivery.worker import attempt
from plugin.domain.rules import raised_priority
from plugin.goodwill import catalog, rulebook
from plugin.goodwill.actions import ActionOutcome
from plugin.goodwill.errors import ActionRefused, InvalidAction
from plugin.helpdesks.demo import DemoHelpdesk
from plugin.helpdesks.interface import GroupDirectory, TicketChange, with_line
from plugin.models import Action, Delivery, DemoNote, DemoTicket, Installation
from plugin.reports import service as reports
from tests.goodwill.world import HIGH_SPENDER, NOW, act, card, set_up

HANDLING = [
    {"kind": "raise_priority", "value": "urgent"},
    {"kind": "add_tag", "value": "vip_care"},
    {"kind": "route_to_group", "value": "Experienced agents"},
]
POLICY = OutboxPolicy(max_failures=3, backoff_seconds=1.0, lease_seconds=30.0, concurrency=1)


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def handle(
    session: Session, inst: Installation, kind: str, value: str, **fields: Any
) -> ActionOutcome:
    return act(
        session,
        inst,
        kind="handle",
        handling=kind,
        handling_value=value,
        **{"idempotency_key": f"handle-{kind}-{value[:8]}".replace(" ", "_")} | fields,
    )


def logged(session: Session) -> list[Action]:
    session.expire_all()
    return list(session.scalars(sa.select(Action).order_by(Action.id)))


def test_a_suggested_handling_is_recorded_once_as_handled_with_its_rule(session: Session) -> None:
    inst = set_up(session, actions=HANDLING)
    first = handle(session, inst, "raise_priority", "urgent")
    again = handle(session, inst, "raise_priority", "urgent")  # a double submit: the same key
    assert first.message == "Raise priority to urgent: recorded, and on its way to the ticket."
    assert not first.duplicate and again.duplicate and again.action.id == first.action.id
    (row,) = logged(session)
    assert (row.kind, row.handling, row.handling_value) == ("handled", "raise_priority", "urgent")
    assert (row.exception_key, row.amount_cents, row.budget_field) == ("", None, None)
    assert row.rule_id == rulebook.find_rule(session, inst.id, "late_high").id
    assert row.rule_version == 1 and row.customer_id is not None
    assert session.get(Delivery, row.id) is not None  # on its way through the outbox


def test_once_handled_the_card_shows_it_done_instead_of_offering_it(session: Session) -> None:
    inst = set_up(session, actions=HANDLING)
    assert [a.action.describe() for a in card(session, inst).actions] == [
        "Raise priority to urgent",
        "Add tag vip_care",
        "Route to Experienced agents",
    ]
    handled = handle(session, inst, "route_to_group", "Experienced agents").action
    shown = card(session, inst)
    assert [a.action.describe() for a in shown.actions] == [
        "Raise priority to urgent",
        "Add tag vip_care",
    ]
    assert [a.id for a in shown.done] == [handled.id]
    assert shown.deliveries[handled.id].status == "pending"
    # Another agent's card, still showing it, sends it again: refused, nothing recorded.
    with pytest.raises(ActionRefused, match="Route to Experienced agents: done on this ticket"):
        handle(session, inst, "route_to_group", "Experienced agents", idempotency_key="other-key")
    assert len(logged(session)) == 1
    # Another ticket of the customer still gets the offer.
    assert len(card(session, inst, "502").actions) == 3


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("route_to_group", "Billing"),  # a group no rule routes to
        ("raise_priority", "high"),  # the rule raises to urgent
        ("add_tag", "free_money"),
    ],
)
def test_a_handling_no_rule_suggests_now_is_refused_and_nothing_recorded(
    session: Session, kind: str, value: str
) -> None:
    inst = set_up(session, actions=HANDLING)
    with pytest.raises(ActionRefused, match="is not suggested for this ticket now"):
        handle(session, inst, kind, value)
    assert logged(session) == []


def test_a_handling_the_ticket_no_longer_needs_is_refused(session: Session) -> None:
    inst = set_up(session, actions=[{"kind": "add_tag", "value": "late_delivery"}])
    # The ticket has the tag already, so the rule offers nothing to do.
    with pytest.raises(ActionRefused, match="Add tag late_delivery is not suggested"):
        handle(session, inst, "add_tag", "late_delivery")
    assert logged(session) == []


def test_a_request_naming_no_handling_says_which_field(session: Session) -> None:
    inst = set_up(session, actions=HANDLING)
    with pytest.raises(InvalidAction) as raised:
        handle(session, inst, "close_ticket", "")
    assert set(raised.value.errors) == {"handling", "handling_value"}
    assert logged(session) == []


def test_handling_grants_nothing_goodwill_caps_budgets_and_reports_ignore_it(
    session: Session,
) -> None:
    inst = set_up(session, actions=HANDLING, cap={"times": 1, "days": 90})
    before = card(session, inst)
    for kind, value in (("raise_priority", "urgent"), ("add_tag", "vip_care")):
        handle(session, inst, kind, value)
    after = card(session, inst)
    assert after.goodwill == before.goodwill
    assert after.goodwill.sentence == "Nothing granted in the last 90 days"
    # The cap (once per 90 days) still allows each exception: nothing was granted.
    assert [o.key for o in after.offers] == [o.key for o in before.offers] != []
    assert [s.spent_cents for s in catalog.budget_statuses(session, inst.id, now=NOW)] == [0]
    report = reports.build_report(
        session, inst, reports.Period(date(2026, 11, 1), date(2026, 11, 30))
    )
    assert report.total.acted_on == 0 and report.total.cost_cents == 0
    assert report.by_exception == () and report.by_rule == ()
    # An apply after the handling is a grant as before, and the only one the report counts.
    act(session, inst, exception="waive_shipping_fee")
    report = reports.build_report(
        session, inst, reports.Period(date(2026, 11, 1), date(2026, 11, 30))
    )
    assert report.total.applied == 1 and [line.key for line in report.by_exception] == [
        "waive_shipping_fee"
    ]


def test_the_note_says_the_handling_and_carries_the_change(session: Session) -> None:
    inst = set_up(session, actions=HANDLING)
    notes = {
        kind: build_note(session, inst, handle(session, inst, kind, value).action)
        for kind, value in (
            ("raise_priority", "urgent"),
            ("add_tag", "vip_care"),
            ("route_to_group", "Experienced agents"),
        )
    }
    raising = notes["raise_priority"]
    lines = raising.body.splitlines()
    assert lines[0] == "Regulars · Ticket handling: Raise priority to urgent."
    # The rule by the name supervisors gave it; its key and version on the reference line.
    assert "Suggested by rule: High value, late delivery" in lines
    assert lines[-2:-1] == ["Rule ref: late_high v1"]
    assert lines[-1].startswith("Ref: regulars-action-handle-")
    assert raising.change == TicketChange(priority="urgent")
    assert raising.tags == ["regulars", "regulars_handled"]
    assert notes["add_tag"].change is None
    assert notes["add_tag"].tags == ["regulars", "regulars_handled", "vip_care"]
    assert notes["route_to_group"].change == TicketChange(group="Experienced agents")


# The demo helpdesk's writer -----------------------------------------------------------------


def demo_ticket(session: Session, inst: Installation, ticket_id: str, priority: str) -> None:
    session.add(
        DemoTicket(
            installation_id=inst.id,
            external_id=ticket_id,
            requester_id=HIGH_SPENDER,
            subject="Order is late",
            description="Where is it?",
            channel="email",
            status="open",
            priority=priority,
            ticket_type="incident",
            tags=["late_delivery"],
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.commit()


def deliver_on_demo(session: Session) -> None:
    def demo_writer(s: Session, i: Installation) -> DemoHelpdesk:
        return DemoHelpdesk(s, installation_id=i.id)

    now = utcnow() + timedelta(hours=1)
    # One action per ticket per claim, in order: claim until every one is delivered or dead.
    while claims := delivery.claim(session, worker_id="test", now=now, policy=POLICY, limit=50):
        for held in claims:
            outcome = attempt(session, held, writers=demo_writer)
            delivery.record(session, held, outcome, now=now, policy=POLICY, rng=random.Random(1))


def test_the_demo_ticket_gets_its_priority_tag_and_group_with_the_note(session: Session) -> None:
    inst = set_up(session, actions=HANDLING)
    demo_ticket(session, inst, "501", "normal")
    handled = [
        handle(session, inst, kind, value).action
        for kind, value in (
            ("raise_priority", "urgent"),
            ("add_tag", "vip_care"),
            ("route_to_group", "Experienced agents"),
        )
    ]
    deliver_on_demo(session)
    session.expire_all()
    ticket = session.scalars(sa.select(DemoTicket)).one()
    assert ticket.priority == "urgent"
    assert ticket.group_name == "Experienced agents"
    assert ticket.tags == ["late_delivery", "regulars", "regulars_handled", "vip_care"]
    notes = list(session.scalars(sa.select(DemoNote).order_by(DemoNote.id)))
    assert [n.marker for n in notes] == [marker_for(a) for a in handled]
    assert "Priority: normal → urgent." in notes[0].body.splitlines()
    assert notes[0].body.endswith(f"Ref: {marker_for(handled[0])}")
    assert {d.status for d in session.scalars(sa.select(Delivery))} == {"delivered"}


def test_the_demo_never_lowers_a_priority_and_refuses_an_unknown_group(session: Session) -> None:
    inst = set_up(session, actions=[{"kind": "route_to_group", "value": "Night shift"}])
    demo_ticket(session, inst, "501", "normal")
    routed = handle(session, inst, "route_to_group", "Night shift").action
    raised = Action(
        **{
            column: getattr(routed, column)
            for column in ("installation_id", "ticket_id", "requester_id", "agent_id", "currency")
        },
        kind="handled",
        exception_key="",
        handling="raise_priority",
        handling_value="high",
        idempotency_key="raise-when-urgent",
        created_at=NOW,
    )
    session.add(raised)
    session.execute(sa.update(DemoTicket).values(priority="urgent"))
    session.commit()
    deliver_on_demo(session)
    session.expire_all()
    dead = session.get(Delivery, routed.id)
    assert dead is not None and dead.status == "dead" and dead.last_error_kind == "refused"
    assert dead.last_error == (
        "The demo helpdesk has no group named “Night shift”: create it there, or change the "
        "rule that routes to it"
    )
    # Once dead, it held back the ticket's next action no longer.
    ticket = session.scalars(sa.select(DemoTicket)).one()
    assert (ticket.priority, ticket.group_name) == ("urgent", None)
    note = session.scalars(sa.select(DemoNote)).one()
    assert "Priority: already urgent, left as it was." in note.body.splitlines()


# The pieces the writers share ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted", "raised"),
    [
        (None, "high", "high"),
        ("low", "normal", "normal"),
        ("normal", "urgent", "urgent"),
        ("high", "high", None),
        ("urgent", "high", None),
        ("unknown", "low", "low"),
    ],
)
def test_a_raise_never_lowers(current: str | None, wanted: str, raised: str | None) -> None:
    assert raised_priority(current, wanted) == raised
    priority, line = TicketChange(priority=wanted).priority_update(current)
    assert priority == raised and line is not None


def test_the_line_goes_before_the_marker_which_stays_last() -> None:
    body = "Regulars · Ticket handling\nBy: agent\nRef: regulars-action-k"
    assert with_line(body, "regulars-action-k", "Priority: low → high.").splitlines() == [
        "Regulars · Ticket handling",
        "By: agent",
        "Priority: low → high.",
        "Ref: regulars-action-k",
    ]
    assert with_line(body, "regulars-action-k", None) == body


def test_groups_are_listed_once_while_fresh_and_again_for_a_name_not_seen() -> None:
    now = [0.0]
    directory = GroupDirectory(ttl_seconds=600, clock=lambda: now[0])
    listings: list[int] = []

    def load() -> dict[str, str]:
        listings.append(1)
        return {"Experienced agents": "7", "Billing": "8"}

    assert directory.id_for("Experienced agents", load=load) == "7"
    assert directory.id_for("experienced AGENTS", load=load) == "7"
    assert directory.id_for("Billing", load=load) == "8"
    assert len(listings) == 1
    assert directory.id_for("Night shift", load=load) is None  # maybe new: listed again
    assert len(listings) == 2
    now[0] = 601.0
    assert directory.id_for("Billing", load=load) == "8"  # stale: listed again
    assert len(listings) == 3
