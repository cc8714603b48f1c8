"""Holdouts on the card: a held-out customer's suggestion is not offered but is recorded like a
shown one; the rule form reads, checks and shows the share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from plugin import db
from plugin.domain.effects import is_held_out
from plugin.domain.rules import RULE_FIELDS, InvalidRule, parse_rule
from plugin.goodwill import holdouts
from plugin.goodwill.errors import ActionRefused
from plugin.goodwill.holdouts import ExposureRecords, customer_key, record_exposures
from plugin.goodwill.rule_forms import read_rule_form, rule_definition, rule_form
from plugin.models import RuleExposure
from plugin.sidebar.writes_apart import WritesApart
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


def _exposure_rows(session: Session, installation_id: int) -> list[tuple[str, bool]]:
    session.expire_all()
    return [
        (row.ticket_id, row.held_out)
        for row in session.query(RuleExposure).filter_by(installation_id=installation_id)
    ]


def test_a_tickets_exposures_are_written_once_after_the_answer(
    storage_app: Flask, session: Session
) -> None:
    """`ExposureRecords` writes on the worker thread when its caller says (the answer made),
    and a later view of the same ticket in the process asks the database nothing."""
    inst = set_up(session, holdout_percent=30)
    found = card(session, inst).exposures
    assert found is not None
    database = db.database(storage_app)
    asked: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as executor:
        writes = WritesApart(executor)

        def sessions() -> AbstractContextManager[Session]:
            asked.append("session")
            return database.unsynced_session()

        records = ExposureRecords(sessions, writes)
        held: list[Callable[[], None]] = []
        records.record(inst.id, ticket_id="501", found=found, now=NOW, start=held.append)
        writes.wait()
        assert _exposure_rows(session, inst.id) == [] and len(held) == 1
        held[0]()
        writes.wait()
        assert [ticket for ticket, _ in _exposure_rows(session, inst.id)] == ["501"]
        for _ in range(3):
            records.record(inst.id, ticket_id="501", found=found, now=NOW, start=held.append)
        assert len(held) == 1 and asked == ["session"]
        # Another ticket is its own record.
        records.record(inst.id, ticket_id="502", found=found, now=NOW)
        writes.wait()
        assert sorted(ticket for ticket, _ in _exposure_rows(session, inst.id)) == ["501", "502"]


def test_a_failed_exposure_write_is_tried_again_on_the_next_view(
    storage_app: Flask, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    inst = set_up(session, holdout_percent=30)
    found = card(session, inst).exposures
    assert found is not None
    database = db.database(storage_app)
    down = [True]

    @contextmanager
    def sessions() -> Iterator[Session]:
        if down[0]:
            raise OperationalError("INSERT INTO rule_exposures", {}, Exception("database down"))
        with database.unsynced_session() as own:
            yield own

    with ThreadPoolExecutor(max_workers=1) as executor:
        writes = WritesApart(executor)
        records = ExposureRecords(sessions, writes)
        records.record(inst.id, ticket_id="501", found=found, now=NOW)
        writes.wait()
        assert _exposure_rows(session, inst.id) == []
        assert "a rule's exposure was not recorded" in caplog.text
        down[0] = False
        records.record(inst.id, ticket_id="501", found=found, now=NOW)
        writes.wait()
        assert [ticket for ticket, _ in _exposure_rows(session, inst.id)] == ["501"]


def test_two_processes_recording_one_ticket_keep_the_first_record(
    storage_app: Flask, session: Session
) -> None:
    """Each process remembers only its own records: the second asks, finds it, writes none."""
    inst = set_up(session, holdout_percent=30)
    found = card(session, inst).exposures
    assert found is not None
    database = db.database(storage_app)
    for _process in range(2):
        ExposureRecords(database.unsynced_session).record(
            inst.id, ticket_id="501", found=found, now=NOW
        )
    assert [ticket for ticket, _ in _exposure_rows(session, inst.id)] == ["501"]
