"""Masking by role in the sidebar: the banner, the cards, the Freshdesk app's answer and the
demo proxy's JSON, each for a masked role and an unmasked one, the value absent from the body."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.demo.seed import ISSUER as DEMO_DOMAIN
from plugin.domain.helpdesk import Person
from plugin.helpdesks import field_mappings
from plugin.helpdesks.demo import DemoHelpdesk
from plugin.helpdesks.freshdesk_installations import issue_secret
from plugin.helpdesks.interface import HelpdeskError
from plugin.models import Installation
from plugin.sidebar.rendered import RenderedParts
from tests.goodwill.test_views import DANIEL, open_ticket_of, text_of
from tests.masking.conftest import (
    ADMIN,
    AGENT,
    HIGH_VALUE_REQUESTER,
    HIGH_VALUE_TICKET,
    bearer_for,
    card,
    set_masks,
)
from tests.sidebar.test_freshdesk_views import invoke
from tests.sidebar.test_orders_views import newest_order

# Margaret Okafor's figures in the seeded demo, as the unmasked banner and orders card say them
# (the same whatever day the demo is seeded on; her orders' numbers are not: `newest_order`).
SPEND_12M, LIFETIME = "$5,307", "$17,232"
ORDER_TOTAL = "$175.92"
CATEGORY = "Coffee beans"


def test_the_banner_hides_the_money_and_lifetime_value_from_a_masked_role(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    app: Flask,
) -> None:
    set_masks(session, demo_installation, {"agent": ["money", "lifetime_value", "order_lines"]})
    agent, admin = launches(app, client, demo_installation)

    masked, unmasked = (
        card(client, "/sidebar/banner", agent),
        card(client, "/sidebar/banner", admin),
    )

    for value in (SPEND_12M, LIFETIME, CATEGORY):
        assert value in unmasked
        assert value not in masked
    assert "5307" not in masked and "530700" not in masked and "17232" not in masked
    assert "data-masked" in masked and "Hidden for your role" in masked
    # The tier and the rest still show.
    assert 'data-tier="high"' in masked and "Margaret Okafor" in masked
    assert "31 orders" in masked
    assert "data-masked" not in unmasked


def test_the_orders_card_hides_its_lines_or_only_their_totals(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    app: Flask,
) -> None:
    set_masks(session, demo_installation, {"agent": ["order_lines"], "admin": ["money"]})
    agent, admin = launches(app, client, demo_installation)

    lines_hidden = card(client, "/sidebar/orders", agent)
    totals_hidden = card(client, "/sidebar/orders", admin)
    order = newest_order(session, demo_installation, HIGH_VALUE_REQUESTER)

    assert order not in lines_hidden and ORDER_TOTAL not in lines_hidden
    assert "recent orders, hidden for your role" in lines_hidden
    assert order in totals_hidden and ORDER_TOTAL not in totals_hidden
    assert "17592" not in totals_hidden
    set_masks(session, demo_installation, {"admin": ["money"]})
    assert ORDER_TOTAL in card(client, "/sidebar/orders", agent)


def test_the_whole_view_hides_what_the_banner_and_the_cards_hide(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    app: Flask,
) -> None:
    """The page's one answer (banner and cards, plugin/sidebar/answer_views.py) masks as each."""
    set_masks(session, demo_installation, {"agent": ["money", "lifetime_value"]})
    agent, admin = launches(app, client, demo_installation)

    masked, unmasked = card(client, "/sidebar/view", agent), card(client, "/sidebar/view", admin)

    assert 'id="rg-orders"' in masked and 'id="rg-orders"' in unmasked
    for value in (SPEND_12M, LIFETIME, ORDER_TOTAL):
        assert value in unmasked
        assert value not in masked
    assert "17592" not in masked and "Margaret Okafor" in masked


def test_cached_banners_never_cross_between_a_masked_and_an_unmasked_viewer(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
) -> None:
    set_masks(session, demo_installation, {"agent": ["money", "lifetime_value"]})
    agent, admin = launches(app, client, demo_installation)
    rendered: RenderedParts = app.extensions["regulars.helpdesks"].rendered
    first = {"agent": card(client, "/sidebar/banner", agent)}
    first["admin"] = card(client, "/sidebar/banner", admin)
    for _round in range(3):
        for who, bearer in (("agent", agent), ("admin", admin)):
            assert card(client, "/sidebar/banner", bearer) == first[who]
    assert SPEND_12M not in first["agent"] and SPEND_12M in first["admin"]
    assert rendered.hits >= 6  # both served from the cache, each its own entry


def test_a_viewer_whose_roles_the_helpdesk_cannot_give_gets_the_strictest_mask(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only agents are masked; an admin sees everything when the helpdesk says who they are.
    set_masks(session, demo_installation, {"agent": ["money"], "admin": []})
    assert SPEND_12M in card(
        client, "/sidebar/banner", bearer_for(app, client, demo_installation, ADMIN)
    )

    def down(_self: DemoHelpdesk, *, user_id: str) -> None:
        raise HelpdeskError("the helpdesk is down", retryable=True)

    monkeypatch.setattr(DemoHelpdesk, "user", down)
    unknown = bearer_for(app, client, demo_installation, ADMIN)  # the launch is not blocked
    banner = card(client, "/sidebar/banner", unknown)
    assert SPEND_12M not in banner and "data-masked" in banner
    monkeypatch.undo()

    # The helpdesk answers again: the session's next card asks, and shows what admins see.
    assert SPEND_12M in card(client, "/sidebar/banner", unknown)


def test_a_change_of_masks_applies_from_the_next_card(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    set_masks(session, demo_installation, {"admin": ["phone"]})
    agent = bearer_for(app, client, demo_installation, AGENT)
    assert SPEND_12M in card(client, "/sidebar/banner", agent)
    set_masks(session, demo_installation, {"admin": ["phone"]}, default=["money"])
    assert SPEND_12M not in card(client, "/sidebar/banner", agent)


def test_without_roles_listed_a_launch_asks_nothing_and_a_later_list_asks_at_the_next_card(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    user = DemoHelpdesk.user

    def counted(self: DemoHelpdesk, *, user_id: str) -> Person:
        asked.append(user_id)
        return user(self, user_id=user_id)

    monkeypatch.setattr(DemoHelpdesk, "user", counted)
    admin = bearer_for(app, client, demo_installation, ADMIN)
    assert asked == [] and SPEND_12M in card(client, "/sidebar/banner", admin)
    # Agents lose the spend: the admin's session, opened before any role was listed, asks
    # the helpdesk at its next card, so it keeps what admins see; an agent's session loses it.
    set_masks(session, demo_installation, {"agent": ["money"]})
    assert SPEND_12M in card(client, "/sidebar/banner", admin) and asked == [ADMIN]
    agent = bearer_for(app, client, demo_installation, AGENT)
    assert SPEND_12M not in card(client, "/sidebar/banner", agent)


def launches(
    app: Flask, client: FlaskClient, installation: Installation
) -> tuple[dict[str, str], dict[str, str]]:
    """The agent's and the admin's sidebar sessions, launched after the masks are set."""
    return bearer_for(app, client, installation, AGENT), bearer_for(
        app, client, installation, ADMIN
    )


def freshdesk_view(agent_id: str) -> dict[str, str]:
    return {
        "ticket_id": HIGH_VALUE_TICKET,
        "requester_id": HIGH_VALUE_REQUESTER,
        "agent_id": agent_id,
        "domain": DEMO_DOMAIN,
    }


def test_the_freshdesk_app_masks_by_the_agents_roles(
    client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    secret = issue_secret(demo_installation)
    session.commit()
    set_masks(session, demo_installation, {"agent": ["money", "lifetime_value", "order_lines"]})

    def sidebar(agent_id: str) -> str:
        response = client.post(
            "/freshdesk/sidebar",
            json=freshdesk_view(agent_id),
            headers={"X-Regulars-Secret": secret},
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)

    masked, unmasked = sidebar(AGENT), sidebar(ADMIN)
    order = newest_order(session, demo_installation, HIGH_VALUE_REQUESTER)
    for value in (SPEND_12M, LIFETIME, ORDER_TOTAL, order):
        assert value in unmasked
        assert value not in masked


def test_the_demo_proxys_json_answer_carries_the_masked_sidebar(
    client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    set_masks(session, demo_installation, {"agent": ["money", "lifetime_value", "order_lines"]})

    def answer(agent_id: str) -> str:
        response = invoke(
            client,
            "getSidebar",
            f'{{"ticket_id": "{HIGH_VALUE_TICKET}", "agent_id": "{agent_id}", '
            f'"domain": "{DEMO_DOMAIN}"}}',
        )
        assert response.status_code == 200 and response.get_json()["status"] == 200
        text: str = response.get_data(as_text=True)
        return text

    masked, unmasked = answer(AGENT), answer(ADMIN)
    for value in (SPEND_12M, LIFETIME, ORDER_TOTAL):
        assert value in unmasked
        assert value not in masked


def test_helpdesk_facts_that_are_contacts_show_as_hidden(
    app: Flask,
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Facts mapped from the helpdesk's fields: a phone or an email is masked by name or by
    how it reads; the others still show."""
    facts = {"mobile": "+44 20 7946 0958", "backup": "m.okafor@example.com", "plan": "gold"}
    monkeypatch.setattr(field_mappings, "mapped_facts", lambda _person, _mappings: dict(facts))
    set_masks(session, demo_installation, {"agent": ["email", "phone"]})
    agent, admin = launches(app, client, demo_installation)

    masked, unmasked = (
        card(client, "/sidebar/banner", agent),
        card(client, "/sidebar/banner", admin),
    )

    for value in ("7946 0958", "m.okafor@example.com"):
        assert value in unmasked
        assert value not in masked
    assert "gold" in masked and 'data-fact="mobile"' in masked


def test_the_order_a_share_is_priced_from_is_a_money_figure(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    """The suggestions card's "Priced:" line names the order's value; the offer's own amount,
    which the agent gives, stays."""
    set_masks(session, demo_installation, {"agent": ["money"]})
    agent, admin = launches(app, client, demo_installation)
    query = {"ticket_id": open_ticket_of(DANIEL), "requester_id": ""}

    unmasked = card(client, "/sidebar/suggestions", admin, **query)
    masked = card(client, "/sidebar/suggestions", agent, **query)

    priced = re.search(r'data-why="order">.*?</li>', unmasked, re.S)
    assert priced, "Daniel's credit is priced from his order"
    assert 'data-why="order"' not in masked
    order_value = re.findall(r"\$[\d,.]+", priced.group())[-1]
    assert order_value not in text_of(masked)
    amounts = re.findall(r'name="amount"[^>]* value="([^"]+)"', unmasked)
    assert amounts and amounts == re.findall(r'name="amount"[^>]* value="([^"]+)"', masked)
