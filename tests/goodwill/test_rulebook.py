"""Rules and their versions (who wrote each, when and why; roll back) and the compiled rule book,
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.domain.rules import InvalidRule
from plugin.goodwill import rulebook
from plugin.goodwill.errors import NotFound
from plugin.models import Persona, Rule
from tests.goodwill.world import ALICE, BOB, LATE, NOW, card, late_rule, offered, set_up


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_every_change_is_a_new_version_with_who_when_and_why(session: Session) -> None:
    inst = set_up(session)
    rule = rulebook.find_rule(session, inst.id, "late_high")
    assert rule.current_version == 1
    later = NOW + timedelta(hours=1)
    v2 = rulebook.update_rule(
        session, inst, rule.id, late_rule(priority=3), author=BOB, note="rank it first", now=later
    )
    assert v2 is not None and v2.version == 2
    # Saving the same definition again writes nothing.
    assert (
        rulebook.update_rule(session, inst, rule.id, late_rule(priority=3), author=BOB, now=later)
        is None
    )
    history = rulebook.rule_history(session, inst.id, rule.id)
    assert [(v.version, v.author_name, v.author_id, v.note) for v in history] == [
        (1, "Alice Supervisor", "80001", ""),
        (2, "Bob Lead", "80002", "rank it first"),
    ]
    assert history[1].created_at == later
    old = rulebook.rule_version(session, inst.id, rule.id, 1)
    assert "priority" not in old.definition  # the old version reads as it was written
    # Disabling is a version too, and the rule's flag follows it.
    rulebook.update_rule(
        session, inst, rule.id, late_rule(priority=3, enabled=False), author=BOB, now=later
    )
    assert rulebook.get_rule(session, inst.id, rule.id).enabled is False
    assert offered(session, inst) == []


def test_an_invalid_rule_says_which_condition_is_wrong(session: Session) -> None:
    inst = set_up(session)
    bad = late_rule(conditions={"all": [{"field": "tier", "operator": "is", "value": "gold"}]})
    with pytest.raises(InvalidRule) as raised:
        rulebook.create_rule(session, inst, key="bad", definition=bad, author=ALICE, now=NOW)
    assert [e.path for e in raised.value.errors] == ["conditions.all[0].value"]
    with pytest.raises(InvalidRule, match="already exists"):
        rulebook.create_rule(
            session, inst, key="late_high", definition=late_rule(), author=ALICE, now=NOW
        )


def test_rollback_is_one_step_and_a_new_version_copying_the_old(session: Session) -> None:
    inst = set_up(session)
    rule = rulebook.find_rule(session, inst.id, "late_high")
    rulebook.update_rule(
        session,
        inst,
        rule.id,
        late_rule(suggest=[{"exception": "free_sample"}]),
        author=BOB,
        now=NOW,
    )
    assert offered(session, inst) == ["free_sample"]
    v3 = rulebook.rollback_rule(session, inst, rule.id, to_version=1, author=ALICE, now=NOW)
    assert (v3.version, v3.restored_from, v3.note) == (3, 1, "Rolled back to version 1")
    assert v3.definition == rulebook.rule_version(session, inst.id, rule.id, 1).definition
    found = card(session, inst)
    # Of one rule's suggestions of equal priority, the cheaper ranks first.
    assert [o.key for o in found.offers] == ["waive_shipping_fee", "goodwill_credit"]
    assert {o.suggestion.rule.version for o in found.offers} == {3}
    with pytest.raises(ValueError, match="already the rule's current version"):
        rulebook.rollback_rule(session, inst, rule.id, to_version=3, author=ALICE, now=NOW)
    with pytest.raises(NotFound, match="no version 9"):
        rulebook.rollback_rule(session, inst, rule.id, to_version=9, author=ALICE, now=NOW)


def test_the_compiled_rules_are_rebuilt_only_when_something_changed(session: Session) -> None:
    inst = set_up(session)
    first = rulebook.rule_book(session, inst)
    assert rulebook.rule_book(session, inst) is first
    card(session, inst)
    assert rulebook.rule_book(session, inst) is first
    rule = rulebook.find_rule(session, inst.id, "late_high")
    rulebook.update_rule(session, inst, rule.id, late_rule(priority=2), author=BOB, now=NOW)
    second = rulebook.rule_book(session, inst)
    assert second is not first and second.rules["late_high"].priority == 2
    # A change made elsewhere (another process, the console) is seen through the database.
    session.add(
        Persona(installation_id=inst.id, name="VIP", conditions={"all": [LATE]}, updated_at=NOW)
    )
    session.commit()
    assert rulebook.rule_book(session, inst) is not second


def test_a_rule_that_no_longer_validates_is_set_aside_not_fatal(session: Session) -> None:
    inst = set_up(session)
    session.add(Persona(installation_id=inst.id, name="VIP", conditions={"all": [LATE]}))
    session.commit()
    vip = {"field": "personas", "operator": "contains", "value": "VIP"}
    rulebook.create_rule(
        session,
        inst,
        key="vip",
        definition={
            "name": "VIP",
            "conditions": {"all": [vip]},
            "suggest": [{"exception": "free_sample"}],
        },
        author=ALICE,
        now=NOW,
    )
    session.execute(sa.delete(Persona).where(Persona.installation_id == inst.id))
    session.commit()
    book = rulebook.rule_book(session, inst)
    assert [what for what, _ in book.broken] == ["rule vip"]
    assert "late_high" in book.rules


def test_a_change_made_outside_the_orm_is_seen_at_the_next_whole_check(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write in plain SQL raises no revision: the counts and latest changes catch it, read
    when the book is built and at most every WHOLE_CHECK_SECONDS after."""
    inst = set_up(session)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    first = rulebook.rule_book(session, inst)
    session.execute(
        sa.update(Rule)
        .where(Rule.installation_id == inst.id)
        .values(updated_at=NOW + timedelta(days=1))
    )
    session.commit()
    clock[0] += rulebook.WHOLE_CHECK_SECONDS - 1
    assert rulebook.rule_book(session, inst) is first
    clock[0] += 2
    assert rulebook.rule_book(session, inst) is not first


def test_a_book_that_passes_the_whole_check_is_kept(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = set_up(session)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    first = rulebook.rule_book(session, inst)
    clock[0] += rulebook.WHOLE_CHECK_SECONDS + 1
    again = rulebook.rule_book(session, inst)
    assert again.compiled is first.compiled and again.checked_at == clock[0]
