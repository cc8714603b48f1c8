"""Segment settings on both databases: personas, guidance, tier bars and the recompute policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.customers import orders
from plugin.customers.condition_rows import FIELD_LABELS, ConditionRow
from plugin.customers.persona_settings import (
    PersonaForm,
    PersonaNotFound,
    delete_persona,
    list_personas,
    persona_form,
    persona_match_counts,
    persona_of,
    save_persona,
    set_persona_enabled,
)
from plugin.customers.segment_guidance import guidance_texts, save_guidance
from plugin.customers.segment_refresh import BaseSize, refresh_segments
from plugin.customers.settings_forms import InvalidForm
from plugin.customers.tier_settings import (
    TierForm,
    save_tier_thresholds,
    suggest_tiers,
    tier_counts,
    tier_thresholds_from,
)
from plugin.domain.segments import SEGMENT_FIELDS, suggest_tier_thresholds
from plugin.domain.tiers import TierThresholds
from plugin.models import CustomerFact, CustomerSegment, Installation, Persona, SegmentGuidance
from tests.seeded_demo import SeededDemos

HIGH_TIER = ConditionRow("tier", "is", "high")


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.fixture
def demo(storage_app: Flask, session: Session, seeded_demos: SeededDemos) -> Installation:
    return seeded_demos.load(storage_app, session)


@pytest.fixture
def other(session: Session) -> Installation:
    installation = Installation(platform="zendesk", account="other", display_name="Other Co")
    session.add(installation)
    session.commit()
    return installation


def persona(name: str = "Busy regulars", **changes: object) -> PersonaForm:
    values: dict[str, object] = {"name": name, "all": (HIGH_TIER,)} | changes
    return PersonaForm(**values)  # type: ignore[arg-type]


def errors_of(session: Session, installation: Installation, form: PersonaForm) -> dict[str, str]:
    with pytest.raises(InvalidForm) as raised:
        save_persona(session, installation, form)
    return raised.value.errors


def high_tier_customers(session: Session, installation: Installation) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count()).where(
                CustomerSegment.installation_id == installation.id, CustomerSegment.tier == "high"
            )
        )
        or 0
    )


# Personas ---------------------------------------------------------------------------------


def test_a_saved_persona_is_stored_as_conditions_with_amounts_in_cents(
    session: Session, demo: Installation
) -> None:
    form = persona(
        description="  Buy a lot, often  ",
        priority="5",
        guidance="Expert user:\r\nskip the basics",
        all=(HIGH_TIER, ConditionRow("spend_12m_cents", "gte", "1,500.50")),
        any=(ConditionRow("behaviour_tags", "contains", "small_business"),),
    )
    saved = save_persona(session, demo, form).persona
    stored = session.get(Persona, saved.id)
    assert stored is not None and stored.installation_id == demo.id
    assert stored.description == "Buy a lot, often"
    assert stored.guidance == "Expert user:\nskip the basics"
    assert stored.priority == 5
    assert stored.conditions == {
        "all": [
            {"field": "tier", "operator": "is", "value": "high"},
            {"field": "spend_12m_cents", "operator": "gte", "value": 150_050},
        ],
        "any": [{"field": "behaviour_tags", "operator": "contains", "value": "small_business"}],
    }
    # Editing shows the amount in currency units again.
    shown = persona_form(stored)
    assert shown.all[1] == ConditionRow("spend_12m_cents", "gte", "1500.50")
    assert shown.any == (ConditionRow("behaviour_tags", "contains", "Small business"),)


def test_list_values_are_split_on_commas_and_choices_read_by_label(
    session: Session, demo: Installation
) -> None:
    form = persona(
        all=(
            ConditionRow("rfm_segment", "in", "Champions, Can't lose them ,"),
            ConditionRow("discount_share", "lt", "0.5"),
            ConditionRow("orders_12m", "not_in", "1, 2"),
        )
    )
    stored = save_persona(session, demo, form).persona
    assert stored.conditions["all"] == [
        {"field": "rfm_segment", "operator": "in", "value": ["champions", "cant_lose_them"]},
        {"field": "discount_share", "operator": "lt", "value": 0.5},
        {"field": "orders_12m", "operator": "not_in", "value": [1, 2]},
    ]
    assert persona_form(stored).all[0].value == "Champions, Can't lose them"


@pytest.mark.parametrize(
    ("form", "key", "words"),
    [
        (persona(name="   "), "name", "Give the persona a name"),
        (persona(name="x" * 101), "name", "101 characters; at most 100"),
        (persona(description="d" * 501), "description", "at most 500"),
        (persona(guidance="g" * 1001), "guidance", "1,001 characters; at most 1,000"),
        (persona(priority="first"), "priority", "whole number"),
        (persona(priority="1.5"), "priority", "whole number"),
        (persona(priority="10000"), "priority", "from 0 to 9,999"),
        (persona(all=()), "conditions", "Add at least one condition"),
        (persona(all=(ConditionRow("", "is", "high"),)), "all[0].field", "Choose a field"),
        (persona(all=(ConditionRow("tier", "", "high"),)), "all[0].operator", "Choose how"),
        (persona(all=(ConditionRow("tier", "is", ""),)), "all[0].value", "Enter a value"),
        (
            persona(all=(ConditionRow("shoe_size", "is", "9"),)),
            "all[0].field",
            "Unknown field 'shoe_size'",
        ),
        (
            persona(all=(ConditionRow("tier", "gt", "high"),)),
            "all[0].operator",
            "“is more than” does not apply to Value tier; choose “is”, “is not”",
        ),
        (
            persona(all=(HIGH_TIER, ConditionRow("tier", "is", "gold"))),
            "all[1].value",
            "Expected one of low, medium, high",
        ),
        (persona(all=(ConditionRow("orders_12m", "gte", "many"),)), "all[0].value", "number"),
        (
            persona(any=(ConditionRow("spend_12m_cents", "in", "100, lots"),)),
            "any[0].value",
            "Value 2: expected a number",
        ),
    ],
)
def test_each_problem_is_reported_against_its_field(
    session: Session, other: Installation, form: PersonaForm, key: str, words: str
) -> None:
    errors = errors_of(session, other, form)
    assert key in errors, errors
    assert words in errors[key]
    assert session.scalars(sa.select(Persona)).first() is None


def test_every_problem_is_reported_at_once(session: Session, other: Installation) -> None:
    form = persona(
        name="",
        priority="x",
        all=(ConditionRow("orders_12m", "gte", "x"), ConditionRow("tier", "is", "high")),
        any=(ConditionRow("tier", "contains", "high"),),
    )
    assert set(errors_of(session, other, form)) == {
        "name",
        "priority",
        "all[0].value",
        "any[0].operator",
    }


def test_names_are_unique_per_installation_whatever_the_case(
    session: Session, demo: Installation, other: Installation
) -> None:
    save_persona(session, demo, persona("Busy regulars"))
    assert "already called" in errors_of(session, demo, persona("busy REGULARS"))["name"]
    # Another installation may use the name; a persona keeps its own name when edited.
    save_persona(session, other, persona("Busy regulars"))
    first = session.scalars(sa.select(Persona).where(Persona.installation_id == demo.id)).one()
    save_persona(session, demo, persona("Busy regulars", priority="3"), persona_id=first.id)
    assert first.priority == 3


def test_only_a_change_to_whom_it_matches_calls_for_a_recompute(
    session: Session, other: Installation
) -> None:
    assert save_persona(session, other, persona()).changes_matches
    first = session.scalars(sa.select(Persona)).one()
    reworded = persona(description="Regulars", guidance="Skip the basics.")
    assert not save_persona(session, other, reworded, persona_id=first.id).changes_matches
    for change in (
        {"name": "Renamed"},
        {"priority": "4"},
        {"enabled": False},
        {"all": (ConditionRow("tier", "is", "medium"),)},
    ):
        changed = persona(**change)
        assert save_persona(session, other, changed, persona_id=first.id).changes_matches, change
        save_persona(session, other, persona(), persona_id=first.id)


def test_a_new_persona_counts_its_customers_after_the_refresh(
    session: Session, demo: Installation
) -> None:
    save_persona(session, demo, persona("Busy regulars"))
    before = list_personas(session, demo).personas[0]
    assert before.matches == 0 and before.changed_since_counted

    refresh = refresh_segments(session, demo, now=utcnow())

    assert refresh.recomputed and refresh.base.customers == 32
    after = list_personas(session, demo).personas[0]
    assert after.matches == high_tier_customers(session, demo) > 0
    assert not after.changed_since_counted
    assert after.all_conditions == ("Value tier is High",)
    assert persona_match_counts(session, demo.id) == {"Busy regulars": after.matches}


def test_a_base_past_the_limit_is_left_for_the_command(
    session: Session, demo: Installation
) -> None:
    save_persona(session, demo, persona("Busy regulars"))
    refresh = refresh_segments(
        session, demo, now=utcnow(), limit=BaseSize(customers=31, orders=10**9)
    )
    assert not refresh.recomputed
    assert refresh.command == "flask segments recompute --installation demo:demo"
    assert persona_match_counts(session, demo.id) == {}
    assert list_personas(session, demo).personas[0].changed_since_counted


def test_off_and_deleted_personas_match_nobody(session: Session, demo: Installation) -> None:
    saved = save_persona(session, demo, persona("Busy regulars")).persona
    set_persona_enabled(session, demo, saved.id, enabled=False)
    refresh_segments(session, demo, now=utcnow())
    assert persona_match_counts(session, demo.id) == {}
    assert not list_personas(session, demo).personas[0].enabled

    set_persona_enabled(session, demo, saved.id, enabled=True)
    assert delete_persona(session, demo, saved.id) == "Busy regulars"
    assert list_personas(session, demo).personas == ()


def test_a_persona_whose_conditions_no_longer_parse_is_listed_as_broken(
    session: Session, demo: Installation
) -> None:
    session.add(
        Persona(
            installation_id=demo.id,
            name="Old",
            conditions={"all": [{"field": "retired_field", "operator": "is", "value": "x"}]},
        )
    )
    session.commit()
    (old,) = list_personas(session, demo).personas
    assert old.broken
    assert old.problems == ("all[0].field: unknown field 'retired_field'",)
    assert persona_form(session.scalars(sa.select(Persona)).one()).all == (
        ConditionRow("retired_field", "is", "x"),
    )


def test_another_installations_persona_is_not_found(
    session: Session, demo: Installation, other: Installation
) -> None:
    theirs = save_persona(session, other, persona("Theirs")).persona
    with pytest.raises(PersonaNotFound):
        persona_of(session, demo, theirs.id)
    with pytest.raises(PersonaNotFound):
        save_persona(session, demo, persona("Mine now"), persona_id=theirs.id)
    with pytest.raises(PersonaNotFound):
        set_persona_enabled(session, demo, theirs.id, enabled=False)
    with pytest.raises(PersonaNotFound):
        delete_persona(session, demo, theirs.id)
    session.refresh(theirs)
    assert (theirs.name, theirs.enabled, theirs.installation_id) == ("Theirs", True, other.id)
    assert list_personas(session, demo).personas == ()


def test_every_segment_field_has_a_label() -> None:
    assert set(FIELD_LABELS) == set(SEGMENT_FIELDS)


def test_every_choice_reads_back_from_the_label_the_form_shows(
    session: Session, other: Installation
) -> None:
    choices = [(name, spec.choices) for name, spec in SEGMENT_FIELDS.items() if spec.choices]
    rows = tuple(
        ConditionRow(name, "contains" if name == "behaviour_tags" else "is", choice)
        for name, values in choices
        for choice in values
    )
    stored = save_persona(session, other, persona(all=rows)).persona
    shown = persona_form(stored)
    assert [row.value for row in shown.all] != [row.value for row in rows]  # labels, not slugs
    again = save_persona(session, other, shown, persona_id=stored.id).persona
    assert [c["value"] for c in again.conditions["all"]] == [row.value for row in rows]


# Guidance ---------------------------------------------------------------------------------


def test_guidance_is_stored_updated_and_removed_per_segment(
    session: Session, demo: Installation, other: Installation
) -> None:
    save_guidance(session, other, {"tier.high": "Theirs"})
    saved = save_guidance(
        session,
        demo,
        {
            "tier.high": " Use their name \r\n and thank them ",
            "behaviour.small_business": "Ask about their account manager.",
            "rfm_segment.champions": "",
            "tier.platinum": "not a segment",
        },
    )
    assert saved == {
        "tier.high": "Use their name \n and thank them",
        "behaviour.small_business": "Ask about their account manager.",
    }
    # A key the form does not send is kept; an empty text removes the guidance.
    save_guidance(session, demo, {"behaviour.small_business": ""})
    assert guidance_texts(session, demo) == {"tier.high": "Use their name \n and thank them"}
    assert guidance_texts(session, other) == {"tier.high": "Theirs"}
    kinds = session.execute(
        sa.select(SegmentGuidance.kind, SegmentGuidance.value).where(
            SegmentGuidance.installation_id == demo.id
        )
    ).all()
    assert [tuple(row) for row in kinds] == [("tier", "high")]


def test_too_long_guidance_saves_nothing_and_names_the_segment(
    session: Session, demo: Installation
) -> None:
    with pytest.raises(InvalidForm) as raised:
        save_guidance(session, demo, {"tier.high": "fine", "lifecycle_stage.at_risk": "x" * 1001})
    assert raised.value.errors == {"lifecycle_stage.at_risk": "1,001 characters; at most 1,000."}
    assert guidance_texts(session, demo) == {}


# Tier thresholds --------------------------------------------------------------------------


def bars(**changes: str) -> TierForm:
    values = {
        "medium_min_orders": "3",
        "medium_min_spend": "250",
        "high_min_orders": "12",
        "high_min_spend": "1500",
    } | changes
    return TierForm(**values)


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        (bars(medium_min_orders=""), {"medium_min_orders": "Enter a whole number of 1 or more."}),
        (bars(medium_min_spend="12.50"), {"medium_min_spend": "'12.50' is not a whole number."}),
        (bars(high_min_orders="0"), {"high_min_orders": "Must be at least 1."}),
        (bars(high_min_spend="-5"), {"high_min_spend": "Must be at least 1."}),
        (bars(high_min_orders="2000000"), {"high_min_orders": "Must be at most 1,000,000."}),
        (
            bars(high_min_orders="2"),
            {"high_min_orders": "Must be at least the medium bar (3): high customers reach both."},
        ),
        (
            bars(medium_min_spend="2,000"),
            {
                "high_min_spend": (
                    "Must be at least the medium bar (2,000): high customers reach both."
                )
            },
        ),
    ],
)
def test_each_wrong_bar_is_named(form: TierForm, errors: dict[str, str]) -> None:
    with pytest.raises(InvalidForm) as raised:
        tier_thresholds_from(form)
    assert raised.value.errors == errors


def test_saved_bars_are_stored_in_cents_and_recompute_moves_customers(
    session: Session, demo: Installation
) -> None:
    before = tier_counts(session, demo.id)
    saved = save_tier_thresholds(session, demo, bars(high_min_orders="3", high_min_spend="1,000"))
    assert saved == TierThresholds(3, 250_00, 3, 1_000_00)
    session.refresh(demo)
    assert (demo.tier_high_min_orders, demo.tier_high_min_spend_cents) == (3, 1_000_00)

    refresh_segments(session, demo, now=utcnow())

    after = tier_counts(session, demo.id)
    assert after.high > before.high
    assert after.high + after.medium + after.low == 32


def test_the_suggestion_comes_from_the_last_twelve_months_of_orders(
    session: Session, demo: Installation, other: Installation
) -> None:
    suggestion = suggest_tiers(session, demo.id, now=utcnow())
    facts: dict[int, dict[str, int]] = {}
    for customer_id, name, value in session.execute(
        sa.select(CustomerFact.customer_id, CustomerFact.name, CustomerFact.value).where(
            CustomerFact.installation_id == demo.id,
            CustomerFact.source == orders.SOURCE,
            CustomerFact.name.in_(("orders_12m", "spend_12m_cents")),
        )
    ):
        facts.setdefault(customer_id, {})[name] = int(value)
    buyers = [(f["orders_12m"], f["spend_12m_cents"]) for f in facts.values() if f["orders_12m"]]
    assert suggestion.buyers == len(buyers) > 0
    assert suggestion.thresholds == suggest_tier_thresholds(buyers)
    # A base without orders gets the default bars.
    assert suggest_tiers(session, other.id, now=utcnow()).thresholds == TierThresholds()
    assert suggest_tiers(session, other.id, now=utcnow()).buyers == 0


def test_the_command_line_suggests_and_applies_the_same_bars(
    storage_app: Flask, session: Session, demo: Installation
) -> None:
    suggestion = suggest_tiers(session, demo.id, now=utcnow()).thresholds
    result = storage_app.test_cli_runner().invoke(
        args=["segments", "suggest-tiers", "--installation", "demo", "--apply"]
    )
    assert result.exit_code == 0, result.output
    assert f"Medium: {suggestion.medium_min_orders}+ orders" in result.output
    assert "Applied." in result.output
    session.expire_all()
    stored = session.get(Installation, demo.id)
    assert stored is not None
    assert stored.tier_high_min_spend_cents == suggestion.high_min_spend_cents
    assert stored.tier_medium_min_orders == suggestion.medium_min_orders
