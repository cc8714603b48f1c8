"""The account review service on SQLite and PostgreSQL: templates, a ticket's review and its
progress, the action log, and installations kept apart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.delivery import notes as delivery_notes
from plugin.demo.reviews_seed import HIGH_VALUE_REVIEW
from plugin.demo.sample_data import build_sample_data
from plugin.domain.helpdesk import Person
from plugin.domain.reviews import InvalidTemplate, ItemRow
from plugin.goodwill.action_log import ticket_actions
from plugin.models import AccountReview, Action, Installation, ReviewTemplate
from plugin.reviews import checklists
from plugin.reviews import tickets as reviews
from plugin.reviews.actions import describe_review_action
from plugin.reviews.checklists import TemplateNotFound
from plugin.reviews.tickets import InvalidCheck, ReviewNotFound
from tests.seeded_demo import SeededDemos

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@pytest.fixture
def world(storage_app: Flask, seeded_demos: SeededDemos) -> Iterator[tuple[Session, Installation]]:
    with db.database(storage_app).sessions() as session:
        yield session, seeded_demos.load(storage_app, session, now=NOW)


def person(name: str) -> Person:
    data = build_sample_data(NOW.date())
    sample = next(c for c in data.customers if c.name == name)
    return Person(id=sample.helpdesk_user_id, name=sample.name, email=sample.email)


MARGARET = person("Margaret Okafor")  # high value
TYLER = person("Tyler Brennan")  # a deal seeker, not high value


def check(
    session: Session,
    installation: Installation,
    ticket: str,
    item: int,
    *,
    checked: bool = True,
    key: str,
    agent: str = "80001",
    who: Person = MARGARET,
) -> reviews.CheckOutcome:
    return reviews.check_item(
        session,
        installation,
        ticket_id=ticket,
        requester=who,
        agent_id=agent,
        fields={
            "item": str(item),
            "checked": "true" if checked else "false",
            "idempotency_key": key,
        },
        now=NOW,
    )


def test_a_review_starts_for_a_customer_it_fits_and_keeps_its_progress(
    world: tuple[Session, Installation],
) -> None:
    session, installation = world
    assert (
        reviews.review_card(session, installation, ticket_id="T-tyler", requester=TYLER, now=NOW)
        is None
    )
    card = reviews.review_card(session, installation, ticket_id="T-1", requester=MARGARET, now=NOW)
    assert card is not None and card.template_name == "High-value account review"
    required = [i.item_id for i in card.items if i.required]
    optional = [i.item_id for i in card.items if not i.required]
    assert len(required) == 3 and len(optional) == 2

    first = check(session, installation, "T-1", required[0], key="key-one-0001")
    assert first.message.startswith("Checked: ") and not first.card.progress.complete
    assert check(session, installation, "T-1", required[0], key="key-one-0001").duplicate
    # A colleague checking the same item again changes nothing and says who did it.
    again = check(session, installation, "T-1", required[0], key="key-one-0002", agent="80002")
    assert again.duplicate and again.message == "Already checked by Sam Carter."
    check(session, installation, "T-1", optional[0], key="key-one-0003", agent="80002")
    check(session, installation, "T-1", required[1], key="key-one-0004", agent="80002")
    last = check(session, installation, "T-1", required[2], key="key-one-0005", agent="80003")
    assert last.card.progress.complete and last.message.endswith("Review complete.")
    assert last.card.completed_by == "Jamal Wright"

    # The template is switched off and the customer would no longer fit: the review carries on.
    template = session.get(
        ReviewTemplate,
        session.scalar(
            sa.select(AccountReview.template_id).where(AccountReview.ticket_id == "T-1")
        ),
    )
    assert template is not None
    checklists.set_template_enabled(session, installation, template.id, enabled=False, now=NOW)
    kept = reviews.review_card(session, installation, ticket_id="T-1", requester=MARGARET, now=NOW)
    assert kept is not None and kept.progress.complete
    assert [i.checked_by for i in kept.items if i.checked] == [
        "Sam Carter",
        "Lena Ortiz",
        "Jamal Wright",
        "Lena Ortiz",
    ]
    # A new ticket of the same customer gets no review while the template is off.
    assert (
        reviews.review_card(session, installation, ticket_id="T-2", requester=MARGARET, now=NOW)
        is None
    )

    # The action log: three checks by three agents, one optional, one completion.
    logged = session.scalars(
        sa.select(Action).where(Action.ticket_id == "T-1").order_by(Action.id)
    ).all()
    assert [a.kind for a in logged] == [
        "review_checked",
        "review_checked",
        "review_checked",
        "review_checked",
        "review_completed",
    ]
    assert all(a.exception_key == "" and a.review_template_id == template.id for a in logged)
    assert len({a.idempotency_key for a in logged}) == 5
    assert describe_review_action(session, logged[0]) == (
        "Account review “High-value account review”: checked "
        "“Confirm the delivery address and preferred carrier”."
    )
    # Exceptions' view of the ticket leaves review actions out.
    assert ticket_actions(session, installation.id, "T-1") == []


def test_unchecking_reopens_and_a_removed_item_reads_as_removed(
    world: tuple[Session, Installation],
) -> None:
    session, installation = world
    card = reviews.review_card(session, installation, ticket_id="T-3", requester=MARGARET, now=NOW)
    assert card is not None
    required = [i.item_id for i in card.items if i.required]
    for index, item in enumerate(required):
        check(session, installation, "T-3", item, key=f"key-three-{index:04d}")
    undone = check(session, installation, "T-3", required[0], checked=False, key="key-three-undo")
    assert undone.message.endswith("The review is open again.")
    assert not undone.card.progress.complete and undone.card.completed_at is None
    already = check(session, installation, "T-3", required[0], checked=False, key="key-three-und2")
    assert already.duplicate and already.message == "Already unchecked."
    unchecked = session.scalars(
        sa.select(Action).where(Action.kind == "review_unchecked", Action.ticket_id == "T-3")
    ).one()
    # The supervisor removes the item from the checklist: the log still reads.
    template_id = unchecked.review_template_id
    assert template_id is not None
    form = checklists.template_form(checklists.template_of(session, installation.id, template_id))
    rows = tuple(
        ItemRow(**{**row.__dict__, "remove": row.item_id == required[0]}) for row in form.items
    )
    checklists.save_template(
        session,
        installation,
        form.__class__(**{**form.__dict__, "items": rows}),
        template_id=template_id,
        now=NOW,
    )
    session.expire_all()
    unchecked = session.scalars(
        sa.select(Action).where(Action.kind == "review_unchecked", Action.ticket_id == "T-3")
    ).one()
    assert describe_review_action(session, unchecked) == (
        "Account review “High-value account review”: unchecked an item since removed from the "
        "checklist."
    )
    note = delivery_notes.build_note(session, installation, unchecked)
    assert note.body.startswith("Regulars · Account review “High-value account review”: unchecked")
    assert "regulars_review_unchecked" in note.tags


def test_bad_checks_are_refused_field_by_field(world: tuple[Session, Installation]) -> None:
    session, installation = world
    with pytest.raises(ReviewNotFound):
        check(session, installation, "no-review", 1, key="key-none-0001")
    with pytest.raises(InvalidCheck) as invalid:
        reviews.check_item(
            session,
            installation,
            ticket_id="T-4",
            requester=MARGARET,
            agent_id="1",
            fields={"item": "one", "checked": "yes", "idempotency_key": "short"},
            now=NOW,
        )
    assert set(invalid.value.errors) == {"item", "checked", "idempotency_key"}
    reviews.review_card(session, installation, ticket_id="T-4", requester=MARGARET, now=NOW)
    with pytest.raises(InvalidCheck) as foreign:
        check(session, installation, "T-4", 999_999, key="key-four-0001")
    assert foreign.value.errors == {"item": "not an item on this ticket's checklist"}


def test_templates_stay_in_their_installation(world: tuple[Session, Installation]) -> None:
    session, installation = world
    other = Installation(platform="zendesk", account="other", display_name="Other")
    session.add(other)
    session.commit()
    theirs = checklists.save_template(session, other, HIGH_VALUE_REVIEW, now=NOW)
    assert theirs.template_id is not None
    assert [t.name for t in checklists.list_templates(session, other.id)] == [theirs.name]
    with pytest.raises(TemplateNotFound):
        checklists.template_of(session, installation.id, theirs.template_id)
    with pytest.raises(TemplateNotFound):
        checklists.set_template_enabled(
            session, installation, theirs.template_id, enabled=False, now=NOW
        )
    # One installation's item ids cannot be edited through the other's template.
    ours = checklists.list_templates(session, installation.id)[0]
    their_item = theirs.items[0].item_id
    form = checklists.template_form(ours)
    stolen = form.__class__(
        **{**form.__dict__, "items": (ItemRow(label="Mine now", item_id=their_item),)}
    )
    with pytest.raises(InvalidTemplate):
        checklists.save_template(
            session, installation, stolen, template_id=ours.template_id, now=NOW
        )
    # A review on the other installation's ticket id is not this installation's.
    reviews.review_card(session, installation, ticket_id="shared-id", requester=MARGARET, now=NOW)
    assert (
        reviews.review_card(session, other, ticket_id="shared-id", requester=MARGARET, now=NOW)
        is None
    )


def test_two_agents_completing_at_once_complete_it_once(
    world: tuple[Session, Installation], storage_app: Flask
) -> None:
    session, installation = world
    card = reviews.review_card(session, installation, ticket_id="T-5", requester=MARGARET, now=NOW)
    assert card is not None
    required = [i.item_id for i in card.items if i.required]
    check(session, installation, "T-5", required[0], key="key-five-0000")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def agent(item: int, key: str) -> None:
        try:
            with db.database(storage_app).sessions() as own:
                mine = own.get(Installation, installation.id)
                assert mine is not None
                barrier.wait()
                check(own, mine, "T-5", item, key=key, agent=key[-1])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [
        threading.Thread(target=agent, args=(required[1], "key-five-0001")),
        threading.Thread(target=agent, args=(required[2], "key-five-0002")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    session.expire_all()
    completions = session.scalar(
        sa.select(sa.func.count())
        .select_from(Action)
        .where(Action.ticket_id == "T-5", Action.kind == "review_completed")
    )
    assert completions == 1
    review = session.scalars(sa.select(AccountReview).where(AccountReview.ticket_id == "T-5")).one()
    assert review.completed_at is not None
    assert NOW - timedelta(seconds=1) <= review.completed_at <= NOW + timedelta(seconds=1)
