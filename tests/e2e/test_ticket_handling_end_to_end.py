"""A rule's ticket handling applied from the sidebar and delivered by the outbox to a fake
Zendesk and a fake Freshdesk on 127.0.0.1: the ticket's group and tags change, with the note.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.delivery.cli import worker_for
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.goodwill.rulebook import Author
from plugin.goodwill.transfer import import_rules
from plugin.helpdesks.freshdesk_installations import freshdesk_installation
from plugin.helpdesks.zendesk_installations import zendesk_installation
from plugin.models import Installation
from tests.e2e import test_freshdesk_end_to_end as freshdesk_e2e
from tests.e2e import test_zendesk_end_to_end as zendesk_e2e
from tests.goodwill.test_ticket_handling_views import ROUTE, handling_form
from tests.goodwill.test_views import CAFE, open_ticket_of, text_of

TAG = "Add tag regulars_business"


def import_demo_rules(app: Flask, find: Callable[[Session], Installation | None]) -> None:
    """Give the helpdesk's installation the demo's catalog, budgets and rules."""
    with db.database(app).sessions() as session:
        installation = find(session)
        assert installation is not None
        import_rules(
            session, installation, demo_rules_file(), author=Author(None, "test"), now=utcnow()
        )


def test_zendesk_gets_each_handling_in_one_update_and_the_groups_once(tmp_path: Path) -> None:
    for world in zendesk_e2e.make_world(tmp_path):
        import_demo_rules(world.app, lambda s: zendesk_installation(s, zendesk_e2e.SUBDOMAIN))
        ticket_id = open_ticket_of(CAFE)
        requester = str(world.zendesk.data.tickets[int(ticket_id)]["requester_id"])
        token = world.session_token()
        bearer = {"Authorization": f"Bearer {token}"}
        page = world.client.get(
            "/sidebar/suggestions",
            query_string={"ticket_id": ticket_id, "requester_id": requester},
            headers=bearer,
        ).get_data(as_text=True)
        for what in (ROUTE, TAG):
            answer = world.client.post(
                "/sidebar/actions", data=handling_form(page, what), headers=bearer
            )
            assert answer.status_code == 200, text_of(answer.get_data(as_text=True))
        world.zendesk.reset_counts()
        stats = worker_for(world.app).run(until_empty=True)
        assert (stats.delivered, stats.dead) == (2, 0)
        # Taken within the undo window of each other, both go in one note: one update with
        # the group and the tags, and one listing of the groups, remembered for the next.
        assert world.zendesk.calls == {"update_ticket": 1, "groups": 1}
        found = world.zendesk.data.tickets[int(ticket_id)]
        assert found["group_id"] == 20002  # "Experienced agents" in the fake
        assert {"regulars", "regulars_handled", "regulars_business"} <= set(found["tags"])
        notes = world.zendesk.data.notes[int(ticket_id)]
        (note,) = notes
        lines = note["body"].splitlines()
        assert lines[0] == "Regulars · 2 actions on this ticket"
        assert f"1. Ticket handling: {ROUTE}." in lines
        assert f"2. Ticket handling: {TAG}." in lines
        assert not note["public"]
        # The card now says it is done, and offers neither again.
        card = world.client.get(
            "/sidebar/suggestions", query_string={"ticket_id": ticket_id}, headers=bearer
        ).get_data(as_text=True)
        assert f"{ROUTE}: done on the ticket" in text_of(card)
        assert "rg-handle" not in card


def test_freshdesk_gets_the_group_tags_and_note(tmp_path: Path) -> None:
    for world in freshdesk_e2e.make_world(tmp_path):
        import_demo_rules(world.app, lambda s: freshdesk_installation(s, freshdesk_e2e.DOMAIN))
        ticket_id = open_ticket_of(CAFE)
        requester = str(world.freshdesk.data.tickets[int(ticket_id)]["requester_id"])
        page = world.banner(ticket_id, requester_hint=requester).get_data(as_text=True)
        view = {
            "ticket_id": ticket_id,
            "requester_id": requester,
            "agent_id": freshdesk_e2e.AGENT,
            "domain": freshdesk_e2e.DOMAIN,
        }
        for what in (ROUTE, TAG):
            answer = world.client.post(
                "/freshdesk/actions",
                json=view | {"action": handling_form(page, what)},
                headers={"X-Regulars-Secret": world.secret},
            )
            assert answer.status_code == 200, text_of(answer.get_data(as_text=True))
        world.freshdesk.reset_counts()
        stats = worker_for(world.app).run(until_empty=True)
        assert (stats.delivered, stats.dead) == (2, 0)
        assert world.freshdesk.calls["groups"] == 1
        found = world.freshdesk.data.tickets[int(ticket_id)]
        assert found["group_id"] == 30002  # "Experienced agents" in the fake
        assert {"regulars", "regulars_handled", "regulars_business"} <= set(found["tags"])
        notes = world.freshdesk.data.notes[int(ticket_id)]
        # Both in one note, as they were taken within the undo window of each other.
        (note,) = notes
        lines = note["body"].split("<br>")
        assert lines[0] == "Regulars · 2 actions on this ticket"
        assert f"1. Ticket handling: {ROUTE}." in lines
        assert f"2. Ticket handling: {TAG}." in lines
        assert note["private"]
