"""Holdouts on the card: a held-out customer's suggestion is not offered but is recorded like a
shown one; the rule form reads, checks and shows the share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.domain.effects import is_held_out
from plugin.domain.rules import RULE_FIELDS, InvalidRule, parse_rule
from plugin.goodwill import holdouts
from plugin.goodwill.errors import ActionRefused
from plugin.goodwill.holdouts import customer_key, record_exposures
from plugin.goodwill.rule_forms import read_rule_form, rule_definition, rule_form
from plugin.models import RuleExposure
from tests.goodwill.world import NOW, act, card, set_up


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.mark.parametrize("held", [True, False])
def test_a_held_out_suggestion_is_hidden_and_recorded_like_a_shown_one(
    session: Session, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    inst = set_up(session, holdout_percent=30)
    monkeypatch.setattr(holdouts, "is_held_out", lambda *_args: held)
    found = card(session, inst)
    assert found.exposures is not None
    (exposure,) = found.exposures.exposures  # both gestures come from the one rule
    # The exposure names the rule's first-ranked gesture (the cheaper waiver).
    assert exposure.held_out is held and exposure.exception_key == "waive_shipping_fee"
    offered = sorted(offer.key for offer in found.offers)
    assert offered == ([] if held else ["goodwill_credit", "waive_shipping_fee"])
    if not held:
        assert [offer.suggestion.rank for offer in found.offers] == [1, 2]
    record_exposures(session, inst.id, ticket_id="501", found=found.exposures, now=NOW)
    row = session.query(RuleExposure).filter_by(installation_id=inst.id).one()
    assert (row.held_out, row.segment, row.customer_id) == (
        held,
        "high",
        found.exposures.customer_id,
    )
    assert row.cost_cents == exposure.cost_cents > 0


@pytest.mark.parametrize("kind", ["apply", "escalate", "dismiss"])
def test_a_held_out_suggestion_cannot_be_acted_on_from_a_stale_or_hand_made_form(
    session: Session, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    inst = set_up(session, holdout_percent=30)
    monkeypatch.setattr(holdouts, "is_held_out", lambda *_args: True)
    with pytest.raises(ActionRefused, match="held out for this customer"):
        reason = "customer_declined" if kind == "dismiss" else "late_delivery"
        act(session, inst, kind=kind, exception="waive_shipping_fee", reason=reason)
    monkeypatch.setattr(holdouts, "is_held_out", lambda *_args: False)
    assert act(session, inst, kind="apply", exception="waive_shipping_fee").action.id


def test_the_real_assignment_is_the_hash_of_installation_rule_and_customer(
    session: Session,
) -> None:
    inst = set_up(session, holdout_percent=50)
    found = card(session, inst)
    assert found.exposures is not None
    who = customer_key(found.exposures.customer_id, "11")
    expected = is_held_out(inst.id, "late_high", who, 50)
    assert found.exposures.exposures[0].held_out is expected
    assert bool(found.offers) is not expected
    # Without a holdout every eligible customer is shown the suggestion.
    plain = set_up(session, account="plain")
    assert not any(e.held_out for e in card(session, plain).exposures.exposures)  # type: ignore[union-attr]


def test_the_rule_form_reads_checks_and_shows_the_holdout_share() -> None:
    base = {
        "name": "Late",
        "all-0-field": "tier",
        "all-0-operator": "is",
        "all-0-value": "high",
        "suggest-credit": "on",
    }
    definition, errors = rule_definition(
        read_rule_form(base | {"holdout_percent": "20%"}), RULE_FIELDS
    )
    assert not errors and definition["holdout_percent"] == 20
    assert rule_form("late", definition, RULE_FIELDS).holdout_percent == "20"
    blank, _ = rule_definition(read_rule_form(base | {"holdout_percent": ""}), RULE_FIELDS)
    assert "holdout_percent" not in blank
    _, typo = rule_definition(read_rule_form(base | {"holdout_percent": "a fifth"}), RULE_FIELDS)
    assert typo["holdout_percent"].startswith("Enter a whole percentage")
    too_much, _ = rule_definition(read_rule_form(base | {"holdout_percent": "60"}), RULE_FIELDS)
    with pytest.raises(InvalidRule, match="holdout_percent"):
        parse_rule(too_much, rule_id="late", version=1, fields=RULE_FIELDS, exceptions={"credit"})
