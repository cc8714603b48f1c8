"""The banner's signals agree with each other: lapsed-but-valuable, RFM only when ranked,
greetings by first name or business name, unambiguous dates, and how a record was matched."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from plugin.demo.sample_data import build_sample_data
from plugin.models import Installation
from tests.sidebar.test_views import banner_html, demo_token, launch, open_banner, session_token


def ticket_banner(
    app: Flask, client: FlaskClient, installation: Installation, ticket_id: str
) -> str:
    token = session_token(launch(client, demo_token(app, installation)).get_data(True))
    response = open_banner(client, token, ticket_id)
    assert response.status_code == 200
    html: str = response.get_data(as_text=True)
    return html


def test_a_lapsed_customer_with_high_lifetime_value_is_not_plain_low_value(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "lapsed")  # Walter Huang
    assert 'data-tier="low"' in html  # the twelve-month tier is still low...
    badge = re.search(
        r'<p class="rg-badge rg-badge--lapsed" data-former-tier="high">(.*?)</p>', html, re.S
    )
    assert badge, "...but the badge says what they were"
    assert re.search(r"Lapsed · was High value, \$[\d,]+ lifetime", badge.group(1))
    assert "Low value" not in html


def test_rfm_is_no_headline_chip_on_a_base_too_small_to_rank(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    # The demo's 30-odd buyers are under the 100 RFM needs: fixed bands, so no headline chip.
    html = banner_html(app, client, session, demo_installation, "medium")
    assert "rg-chip--rfm" not in html
    unranked = re.search(r'data-rfm="unranked">\s*<span class="rg-src" data-src="([^"]+)"', html)
    assert unranked and "Too few buyers to rank (RFM needs 100 with orders)" in unranked.group(1)


def test_a_business_is_greeted_by_its_name(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "small_business")
    assert re.search(r"Greet (Bean There Café|Brightside Dental Studio) as the regular", html)


def test_a_person_is_greeted_by_first_name_and_tenure_has_a_full_year(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "high")
    assert re.search(r"Greet [A-Z][a-z]+ as the regular", html)
    assert re.search(r"Customer since [A-Z][a-z]{2} \d{4} · \d+ years?", html)


def test_a_voice_caller_known_to_the_store_only_by_phone_is_matched_by_phone(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    data = build_sample_data(datetime.now(UTC).date())
    caller = next(c for c in data.customers if c.phone_only_store_name)
    ticket = next(
        t
        for t in data.tickets
        if t.requester_user_id == caller.helpdesk_user_id and t.channel == "voice"
    )
    html = ticket_banner(app, client, demo_installation, ticket.external_id)
    # The helpdesk's name leads; how the record was found and the store's name follow.
    assert f'<h1 id="rg-name" class="rg-name">{caller.name}</h1>' in html
    matched = re.search(r'data-part="matched" data-matched-by="phone">(.*?)</p>', html, re.S)
    assert matched and matched.group(1).strip() == (
        f"matched by phone · in the store as {caller.phone_only_store_name}"
    )


def test_a_customer_found_by_helpdesk_id_says_nothing_of_matching(
    app: Flask, client: FlaskClient, session: Session, demo_installation: Installation
) -> None:
    html = banner_html(app, client, session, demo_installation, "high")
    assert 'data-part="matched"' not in html
