"""The sentences the Python code builds for the sidebar, in the agent's language.

The domain builds them in English (`Words`, still a str: notes, logs and tests read English);
`say` words them for the request: translated, amounts formatted for the locale, nested
sentences translated too, plurals by the language's rules.
"""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from flask import Flask

from plugin.domain.exceptions import (
    Budget,
    BudgetStatus,
    Goodwill,
    PercentCost,
    SegmentRef,
)
from plugin.domain.personas import Condition, Operator
from plugin.domain.reviews import ChecklistItem, progress
from plugin.domain.rules import ActionKind, Cap, TicketAction
from plugin.domain.wording import N_, Words
from plugin.gestures.words import given_words
from plugin.goodwill.card_words import condition_words
from plugin.models import Gesture
from plugin.sidebar.views import problem
from plugin.web.i18n import say

NBSP = "\u00a0"


def test_words_are_english_strings_that_keep_their_message() -> None:
    goodwill = Goodwill(count=2, cents=3_800, days=90, currency="USD")
    assert goodwill.sentence == "$38 granted in the last 90 days"
    assert isinstance(goodwill.sentence, Words)
    assert f"{goodwill.sentence}." == "$38 granted in the last 90 days."
    # Cached cards are pickled: the message survives, not only its English.
    again = pickle.loads(pickle.dumps(goodwill.sentence))  # noqa: S301 (bytes made here)
    assert isinstance(again, Words) and again.values == goodwill.sentence.values
    assert Cap(times=1, days=1).describe() == "once per 1 day"
    assert Cap(times=3, days=365).describe() == "3 times per 365 days"


@pytest.mark.parametrize(
    ("locale", "goodwill", "budget", "action"),
    [
        ("en-US", "$38 granted in the last 90 days", "$412 of $1,000 this month",
         "Raise priority to urgent"),
        ("de", f"38{NBSP}$ gewährt in den letzten 90 Tagen",
         f"412{NBSP}$ von 1.000{NBSP}$ in diesem Monat", "Priorität auf urgent erhöhen"),
        ("es", f"38{NBSP}US$ concedidos en los últimos 90 días",
         f"412{NBSP}US$ de 1.000{NBSP}US$ este mes", "Subir la prioridad a urgent"),
    ],
)  # fmt: skip
def test_the_why_of_a_suggestion_in_the_agents_language(
    app: Flask, locale: str, goodwill: str, budget: str, action: str
) -> None:
    status = BudgetStatus(Budget(SegmentRef("tier", "high"), 100_000), 41_200)
    with app.test_request_context(f"/?locale={locale}"):
        assert say(Goodwill(2, 3_800, 90, "USD").sentence) == goodwill
        assert say(status.sentence("USD")) == budget
        assert say(TicketAction(ActionKind.RAISE_PRIORITY, "urgent").describe()) == action


def test_nested_sentences_segments_and_plurals_are_translated(app: Flask) -> None:
    cost = PercentCost(Decimal(10), min_cents=500, max_cents=8_000)
    with app.test_request_context("/?locale=de"):
        assert say(cost.describe("EUR")) == (
            f"10% der Bestellung, mindestens 5{NBSP}€, höchstens 80{NBSP}€"
        )
        assert say(Goodwill(0, 0, 1, "EUR").sentence) == "Nichts gewährt am letzten 1 Tag"
        assert say(SegmentRef("tier", "high").label) == "Hoher Wert"
        assert say(SegmentRef("rfm_segment", "at_risk").label) == "Gefährdet"
        items = [ChecklistItem("a", item_id=1), ChecklistItem("b", item_id=2)]
        assert say(progress(items, {2}).describe()) == "1 von 2 Pflichtpunkten abgehakt"
        only = [ChecklistItem("a", item_id=1)]
        assert say(progress(only, set()).describe()) == "0 von 1 Pflichtpunkt abgehakt"
        held = (
            Condition("tier", Operator.IS, "high"),
            Condition("ticket_tags", Operator.CONTAINS, "vip"),
        )
        assert [say(words) for words in condition_words(held)] == [
            "Wertstufe ist hoch",
            "Ticket-Tags enthalten vip",
        ]
        at_risk_or_lapsed = Condition("lifecycle_stage", Operator.IN, ("at_risk", "lapsed"))
        assert say(condition_words([at_risk_or_lapsed])[0]).endswith("gefährdet, abgewandert")
    with app.test_request_context("/?locale=es"):
        assert say(Cap(times=2, days=90).describe()) == "2 veces cada 90 días"
    with app.test_request_context("/?locale=en-US"):
        assert condition_words(held) == ("tier is high", "ticket tags include vip")


def test_text_that_is_not_words_is_shown_as_it_is(app: Flask) -> None:
    with app.test_request_context("/?locale=de"):
        assert say("Order 1234 has only $5 left") == "Order 1234 has only $5 left"
        # A sentence nobody translated yet falls back to its English, values filled in.
        assert say(N_("Not in any catalog %(n)s", n="x")) == "Not in any catalog x"


def test_the_sidebars_problems_and_the_shops_gestures_in_the_agents_language(app: Flask) -> None:
    gesture = Gesture(
        kind="discount_code", currency="EUR", amount_cents=850, given_cents=850, code="RG1A2B"
    )
    assert given_words(gesture) == "Discount code RG1A2B (€8.50 off)"  # the note's English
    with app.test_request_context("/?locale=de"):
        html, status = problem(N_("No ticket to show."), 400)
        assert status == 400 and "Kein Ticket zum Anzeigen." in html
        assert say(given_words(gesture)) == f"Rabattcode RG1A2B (8,50{NBSP}€ Rabatt)"


def test_the_banners_segment_reasons_in_the_agents_language(app: Flask) -> None:
    # A regular monthly buyer gone quiet: lapsed, with why; every order discounted.
    from datetime import date, timedelta

    from plugin.domain.behaviour import deal_seeker_tag
    from plugin.domain.lifecycle import LifecycleStage, lifecycle_status
    from tests.domain.strategies import history_on

    first = date(2024, 1, 1)
    days = [first + timedelta(days=30 * n) for n in range(12)]
    history = history_on(days, discounted=[True] * 12)
    today = days[-1] + timedelta(days=200)
    status = lifecycle_status(history, today=today)
    assert status is not None and status.stage is LifecycleStage.LAPSED
    tag = deal_seeker_tag(history, today=today)
    assert tag is not None
    assert status.reason.startswith("no order for 200 days; lapsed after")  # English as before
    assert tag.reason == "12 of 12 orders used a discount"
    with app.test_request_context("/?locale=de"):
        assert say(status.reason).startswith(
            "200 Tage ohne Bestellung; Grenze für „abgewandert“ bei diesem Kunden: "
        )
        assert say(tag.reason) == "12 von 12 Bestellungen mit Rabatt"
    with app.test_request_context("/?locale=es"):
        assert say(status.reason).startswith("sin pedidos desde hace 200 días; inactivo tras")


def test_a_reviews_audience_in_the_agents_language(app: Flask) -> None:
    from plugin.domain.reviews import Audience

    audience = Audience(tiers=frozenset({"high"}), lifecycle_stages=frozenset({"at_risk"}))
    assert audience.describe() == "tier high or lifecycle at risk"  # English as before
    with app.test_request_context("/?locale=de"):
        assert say(audience.describe()) == "Wertstufe hoch oder Lebenszyklus gefährdet"
    with app.test_request_context("/?locale=es"):
        assert say(audience.describe()) == "nivel alto o ciclo de vida en riesgo"
        assert say(Audience().describe()) == "nadie"
