"""The sidebar's view in one answer: the banner and its cards, as the page asks for them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.models import Installation
from plugin.sidebar import answer_views
from tests.customers import test_shopify as shop
from tests.goodwill.test_views import MARGARET, TYLER, open_ticket_of, text_of
from tests.sidebar.test_orders_views import SHOP_ANSWER
from tests.sidebar.test_sync import (
    DUE,
    PROSPECT,
    bearer,  # noqa: F401 (a fixture)
    prospect_ticket,
    settle,
    shop_connected,  # noqa: F401 (a fixture)
)
from tests.sidebar.test_views import first_ticket_of

HOLDER = re.compile(r'<div id="(rg-[a-z]+)" class="rg-suggestions-holder" aria-live="polite">')


def get(client: FlaskClient, path: str, headers: dict[str, str], ticket: str) -> tuple[int, str]:
    response = client.get(path, query_string={"ticket_id": ticket}, headers=headers)
    return response.status_code, response.get_data(as_text=True)


def holders(html: str) -> dict[str, str]:
    """Each holder's content (up to the next holder), by its id."""
    parts = HOLDER.split(html)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_view_is_the_banner_and_each_card_the_page_would_ask_for(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    ticket = open_ticket_of(MARGARET)
    status, html = get(client, "/sidebar/view", bearer, ticket)
    settle(app)

    assert status == 200, html
    assert html.index("rg-banner") < html.index('id="rg-suggestions"'), "the banner comes first"
    cards = holders(html)
    assert list(cards) == ["rg-suggestions", "rg-orders", "rg-review"], "in the page's order"
    # What each card's own request answers (their forms' one-time keys aside).
    for holder, path in (
        ("rg-suggestions", "/sidebar/suggestions"),
        ("rg-orders", "/sidebar/orders"),
        ("rg-review", "/sidebar/review"),
    ):
        own_status, own = get(client, path, bearer, ticket)
        assert own_status == 200
        assert _without_keys(text_of(cards[holder])) == _without_keys(text_of(own)), holder
    assert "Account review" in text_of(cards["rg-review"])


def _without_keys(text: str) -> str:
    return re.sub(r"[A-Za-z0-9_-]{24}", "KEY", text)


def test_cards_with_nothing_to_show_have_no_holder(
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    status, html = get(client, "/sidebar/view", bearer, open_ticket_of(TYLER))
    assert status == 200, html
    assert "rg-review" not in holders(html), "no account review is called for"


def test_a_banner_that_asks_for_a_write_comes_with_its_cards_and_so_does_the_writes_answer(
    client: FlaskClient,
    session: Session,
    shop_connected: Installation,  # noqa: F811
    bearer: dict[str, str],  # noqa: F811
    rsps: responses.RequestsMock,
) -> None:
    """The page shows the view at once, posts the write, and shows the view the write answers
    (built from what is then stored) in its place, as Freshdesk's page does."""
    rsps.post(shop.URL, json=SHOP_ANSWER)
    query = {"ticket_id": prospect_ticket(session, shop_connected), "requester_id": PROSPECT}
    response = client.get("/sidebar/view", query_string=query, headers=bearer)

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and DUE in html
    assert "rg-suggestions" in holders(html)

    written = client.post("/sidebar/sync", data=query, headers=bearer)
    after = written.get_data(as_text=True)
    assert written.status_code == 200 and DUE not in after
    assert "Ravi Desai" in text_of(after), "the shop's customer, now stored"
    assert {"rg-suggestions", "rg-orders"} <= set(holders(after))


def test_a_card_that_fails_shows_its_failure_and_the_rest_still_shows(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the orders could not be read")

    monkeypatch.setattr(answer_views, "read_orders", broken)
    status, html = get(client, "/sidebar/view", bearer, open_ticket_of(MARGARET))

    assert status == 200, html
    cards = holders(html)
    assert "Recent orders could not be loaded." in text_of(cards["rg-orders"])
    assert 'role="alert"' in cards["rg-orders"]
    assert "rg-banner" in html and "Account review" in text_of(cards["rg-review"])
    assert "rg-suggestions" in cards and "could not" not in text_of(cards["rg-suggestions"])
    assert "the rg-orders card of installation" in caplog.text


def test_the_view_needs_a_valid_session(
    client: FlaskClient, demo_installation: Installation
) -> None:
    status, html = get(client, "/sidebar/view", {"Authorization": "Bearer forged"}, "1")
    assert status == 401 and "rg-suggestions" not in html


def test_a_prospects_view_shows_the_banner_and_the_suggestions(
    client: FlaskClient,
    session: Session,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    ticket = first_ticket_of(session, demo_installation, "prospect")
    status, html = get(client, "/sidebar/view", bearer, ticket)
    assert status == 200 and "Not a customer yet" in text_of(html)
    assert "rg-suggestions" in holders(html)


def test_the_views_server_timing_names_each_card(
    client: FlaskClient,
    demo_installation: Installation,
    bearer: dict[str, str],  # noqa: F811
) -> None:
    """The benchmark splits a view's server time by its parts (bench/agent_view.py): the
    ticket's state the cards share, then each card."""
    response = client.get(
        "/sidebar/view", query_string={"ticket_id": open_ticket_of(MARGARET)}, headers=bearer
    )
    timing = response.headers["Server-Timing"]
    assert re.fullmatch(
        r"app;dur=[0-9.]+, state;dur=[0-9.]+, suggestions;dur=[0-9.]+, orders;dur=[0-9.]+, "
        r"review;dur=[0-9.]+",
        timing,
    ), timing
    whole, *parts = (float(ms) for ms in re.findall(r"dur=([0-9.]+)", timing))
    assert sum(parts) <= whole
