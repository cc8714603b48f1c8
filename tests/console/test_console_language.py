"""The console in its user's language: the helpdesk's word for the user's locale at launch,
else the browser's; the page carries it so that every section it loads answers in it too."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin.domain.helpdesk import Person
from plugin.helpdesks import demo
from plugin.helpdesks.zendesk_payloads import person_from
from plugin.models import Installation
from tests.console.test_views import launch, launch_token, session_token


def test_the_console_speaks_the_browsers_language_when_the_helpdesk_says_none(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9"
    html = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "<h1>Regulars-Konsole</h1>" in html
    assert "angemeldet als Diane Foster (Admin)" in html
    assert 'data-locale="de"' in html


def test_the_helpdesks_locale_for_the_user_wins_and_the_sections_follow_it(
    app: Flask,
    client: FlaskClient,
    demo_installation: Installation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = demo.DemoHelpdesk.user

    def in_spanish(self: demo.DemoHelpdesk, *, user_id: str) -> Person:
        return replace(answer(self, user_id=user_id), locale="es-419")

    monkeypatch.setattr(demo.DemoHelpdesk, "user", in_spanish)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    html = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    assert "<h1>Consola de Regulars</h1>" in html
    assert 'data-locale="es-419"' in html
    # console.js sends the page's locale with each section it loads.
    headers = {"Authorization": f"Bearer {session_token(html)}"}
    rules = client.get("/console/rules", query_string={"locale": "es-419"}, headers=headers)
    assert rules.status_code == 200
    assert "Nueva regla" in rules.get_data(as_text=True)
    budgets = client.get("/console/budgets", query_string={"locale": "de"}, headers=headers)
    assert "Monatsbudget festlegen" in budgets.get_data(as_text=True)


def test_english_stays_english(
    app: Flask, client: FlaskClient, demo_installation: Installation
) -> None:
    html = launch(client, launch_token(app, demo_installation)).get_data(as_text=True)
    assert '<html lang="en-US">' in html
    assert "<h1>Regulars console</h1>" in html and "signed in as Diane Foster (admin)" in html


def test_zendesk_says_a_users_locale() -> None:
    assert person_from({"id": 7, "name": "Ana", "locale": "es-419"}).locale == "es-419"
    assert person_from({"id": 7, "name": "Ana"}).locale is None
