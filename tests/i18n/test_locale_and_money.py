"""The request's locale, and money and dates for it: "1.234,50 €" in German, "$1,234.50" in US
English, "vor 3 Monaten"; whole units keep their integer half-up rounding in every locale."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from flask import Blueprint, Flask
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.exceptions import money
from plugin.goodwill.money import exact_money
from plugin.web.formatting import ago, days_ago, money_for_agent, tenure
from plugin.web.i18n import request_locale, speak, supported_locale

NBSP = "\u00a0"
NOW = datetime(2026, 11, 30, 12, 0)


def test_money_in_the_agents_locale() -> None:
    assert exact_money(123_450, "USD", "en_US") == "$1,234.50"
    assert exact_money(123_450, "EUR", "de") == f"1.234,50{NBSP}€"
    assert exact_money(123_450, "EUR", "es") == f"1.234,50{NBSP}€"
    assert money(123_450, "EUR", "de") == f"1.235{NBSP}€"
    assert money(123_450, "USD", "de") == f"1.235{NBSP}$"
    assert money(-250, "EUR", "de") == f"-3{NBSP}€"
    assert exact_money(1_500, "EUR", "de") == f"15{NBSP}€"


@given(st.integers(min_value=-(10**9), max_value=10**9), st.sampled_from(["de", "es", "en_GB"]))
def test_whole_units_are_exact_arithmetic_rounded_half_up_in_every_locale(
    cents: int, locale: str
) -> None:
    exact = (Decimal(abs(cents)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    shown = money(cents, "EUR", locale)
    digits = "".join(ch for ch in shown if ch.isdigit())
    assert int(digits) == exact
    assert shown.startswith("-") == (cents < 0 and exact != 0)


@pytest.mark.parametrize(
    ("tag", "locale"),
    [("de", "de"), ("de-AT", "de_AT"), ("es-419", "es_419"), ("en-US", "en_US"), ("en", "en_US"),
     ("pt-BR", None), ("fr", None), ("", None), ("../../etc", None), ("x" * 40, None)],
)  # fmt: skip
def test_a_helpdesk_locale_tag_is_spoken_or_refused(tag: str, locale: str | None) -> None:
    assert supported_locale(tag) == locale


def _echo_app(app: Flask) -> None:
    if "locale_echo" in app.blueprints:
        return
    echo = Blueprint("locale_echo", __name__)
    echo.add_url_rule("/locale-echo", "echo", lambda: request_locale(), methods=["GET", "POST"])
    app.register_blueprint(echo)


def test_the_request_says_its_locale(app: Flask) -> None:
    _echo_app(app)
    client = app.test_client()
    assert client.get("/locale-echo?locale=de-DE").text == "de_DE"
    # The page's word wins over the browser's; an unknown language falls back to the browser's.
    spanish_browser = {"Accept-Language": "es-ES,es;q=0.9"}
    assert client.get("/locale-echo?locale=de", headers=spanish_browser).text == "de"
    assert client.get("/locale-echo?locale=pt-BR", headers=spanish_browser).text == "es"
    assert client.get("/locale-echo", headers={"Accept-Language": "fr"}).text == "en_US"
    assert client.get("/locale-echo").text == "en_US"


def test_dates_and_the_money_filter_follow_the_request(app: Flask) -> None:
    with app.test_request_context("/?locale=de"):
        assert money_for_agent(123_450, "EUR") == f"1.235{NBSP}€"
        assert ago(NOW - timedelta(days=100), NOW) == "vor 3 Monaten"
        assert ago(NOW - timedelta(days=1), NOW) == "vor 1 Tag"
        assert ago(NOW - timedelta(seconds=10), NOW) == "gerade eben"
        assert days_ago(date(2026, 11, 29), NOW.date()) == "gestern"
        assert tenure(date(2014, 5, 1), NOW.date()) == "seit Mai 2014 · 12 Jahre"
    with app.test_request_context("/?locale=es"):
        assert ago(NOW - timedelta(days=100), NOW) == "hace 3 meses"
        assert ago(NOW - timedelta(hours=1), NOW) == "hace 1 hora"
        assert tenure(date(2025, 11, 1), NOW.date()) == "desde nov 2025 · 1 año"
    with app.test_request_context("/?locale=en-US"):
        assert money_for_agent(123_450, "USD") == "$1,235"
        assert ago(NOW - timedelta(days=100), NOW) == "3 months ago"


def test_templates_follow_a_language_the_helpdesk_says_midway(app: Flask) -> None:
    """Templates keep the request's catalog for the request; `speak` changes it."""
    words = app.jinja_env.from_string(
        "{{ _('Apply') }} {{ ngettext('%(num)d day', '%(num)d days', 2) }}"
    )
    with app.test_request_context("/?locale=en-US"):
        assert words.render() == "Apply 2 days"
        speak("de")
        assert words.render() == "Anwenden 2 Tage"
    with app.test_request_context("/?locale=es"):
        assert words.render().startswith("Aplicar")
