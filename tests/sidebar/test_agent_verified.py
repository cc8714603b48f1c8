"""Who did it: an action taken through the Freshdesk app names an agent nothing signed, and
says so in its note, the report and the console; one the helpdesk signed the agent of does not."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.delivery.notes import build_note
from plugin.models import Action, Installation
from plugin.reports.service import build_report, parse_period, report_csv
from tests.goodwill.test_views import MARGARET, actions, form_of, open_ticket_of
from tests.sidebar.test_freshdesk_views import act, ask, demo_secret, view

__all__ = ["demo_secret"]  # the fixture, used by name below


def test_an_action_from_the_freshdesk_app_is_marked_agent_not_verified(
    client: FlaskClient, demo_secret: str, session: Session, demo_installation: Installation
) -> None:
    ticket_id = open_ticket_of(MARGARET)
    html = ask(client, demo_secret, view(ticket_id=ticket_id)).get_data(as_text=True)
    fields = form_of(html, "expedited_shipping") | {"kind": "apply", "reason": "late_delivery"}
    assert act(client, demo_secret, ticket_id, fields).status_code == 200

    session.expire_all()
    action = actions(session)[-1]
    assert action.agent_verified is False
    note = build_note(session, demo_installation, action)
    assert "(agent not verified)" in note.body
    today = utcnow().date()
    period = parse_period(str(today - timedelta(days=1)), str(today), today=today)
    report = build_report(session, demo_installation, period)
    line = next(agent for agent in report.agents if agent.agent_id == action.agent_id)
    assert line.unverified >= 1
    exported = list(csv.DictReader(io.StringIO(report_csv(report))))
    row = next(row for row in exported if row["section"] == "agent" and row["name"] == line.name)
    assert int(row["agent_not_verified"]) == line.unverified


def test_an_action_written_elsewhere_is_verified_and_its_note_says_nothing_more(
    session: Session, demo_installation: Installation
) -> None:
    action = Action(
        installation_id=demo_installation.id,
        ticket_id="1",
        requester_id="2",
        agent_id="80001",
        kind="applied",
        exception_key="",
        currency="USD",
        idempotency_key="verified-1",
    )
    session.add(action)
    session.commit()
    assert action.agent_verified is True
    assert "not verified" not in build_note(session, demo_installation, action).body
