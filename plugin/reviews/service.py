"""Account reviews at work: an installation's checklist templates, and each ticket's review.

No Flask here: the sidebar (`plugin/reviews/views.py`), the console
(`plugin/reviews/console_views.py`) and any other helpdesk's route call it. Every query is scoped
to one installation; an id of another installation's template or item is not found.

- Templates: `list_templates`, `template_of`, `save_template` (the template and its items in
  one form, validated by `plugin.domain.reviews.parse_template`), `set_template_enabled`.
  Templates are disabled, never deleted, so the reviews done on them keep their checklist.
- A ticket's review: `review_card` finds the ticket's review, or starts one when a template
  fits the customer (the review is due from then on; reports count it), and says who checked
  what and when. `check_item` checks or unchecks an item once per idempotency key, and marks
  the review complete when the last required item is checked.
- The action log: checking, unchecking and completing are actions (`ReviewActionKind`), with
  the ticket, customer, agent, time, and the template and item they concern; the outbox
  delivers them to the ticket like every action. `describe_review_action` says one in a
  sentence for the ticket's note.

Decisions worth knowing:

- One review per ticket, on the template that fitted when the sidebar first showed it: a
  colleague who takes the ticket over continues the same checklist even if the customer has
  changed segment since, and a supervisor disabling the template does not wipe work under way.
- Items removed from a template since a review began leave the review (their checks go with
  them); the action log keeps the history, and the card shows the template as it is now.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers import segmentation
from plugin.domain.field_errors import FieldErrors
from plugin.domain.helpdesk import Person
from plugin.domain.reviews import (
    Audience,
    AudienceKind,
    ChecklistItem,
    CustomerSegments,
    InvalidTemplate,
    ItemRow,
    Progress,
    TemplateForm,
    parse_template,
    progress,
    template_for,
)
from plugin.domain.reviews import ReviewTemplate as Template
from plugin.helpdesks import demo
from plugin.models import (
    AccountReview,
    Action,
    DemoUser,
    Installation,
    Persona,
    ReviewCheck,
    ReviewItem,
    ReviewTemplate,
)

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")


class ReviewActionKind(StrEnum):
    """What the action log records about reviews (next to the exceptions' kinds)."""

    CHECKED = "review_checked"
    UNCHECKED = "review_unchecked"
    COMPLETED = "review_completed"


REVIEW_KINDS = tuple(kind.value for kind in ReviewActionKind)


class TemplateNotFound(LookupError):
    """No such checklist template in this installation."""


class ReviewNotFound(LookupError):
    """No review on this ticket, or no such item on it."""


class InvalidCheck(FieldErrors):
    """A check request that does not validate: a message per field."""


# Templates ---------------------------------------------------------------------------------


def _domain(row: ReviewTemplate, items: Iterable[ReviewItem]) -> Template:
    raw = row.audience or {}
    audience = Audience(
        tiers=frozenset(raw.get(AudienceKind.TIER.value, ())),
        rfm_segments=frozenset(raw.get(AudienceKind.RFM_SEGMENT.value, ())),
        lifecycle_stages=frozenset(raw.get(AudienceKind.LIFECYCLE_STAGE.value, ())),
        personas=frozenset(raw.get(AudienceKind.PERSONA.value, ())),
    )
    return Template(
        name=row.name,
        audience=audience,
        items=tuple(
            ChecklistItem(label=i.label, required=i.required, help=i.help_text, item_id=i.id)
            for i in sorted(items, key=lambda i: (i.position, i.id))
        ),
        description=row.description,
        priority=row.priority,
        enabled=row.enabled,
        template_id=row.id,
    )


def list_templates(session: Session, installation_id: int) -> list[Template]:
    """The installation's templates, in the order they are chosen (priority, then name)."""
    rows = list(
        session.scalars(
            sa.select(ReviewTemplate).where(ReviewTemplate.installation_id == installation_id)
        )
    )
    items: dict[int, list[ReviewItem]] = {row.id: [] for row in rows}
    for item in session.scalars(
        sa.select(ReviewItem).where(ReviewItem.installation_id == installation_id)
    ):
        items.setdefault(item.template_id, []).append(item)
    templates = [_domain(row, items[row.id]) for row in rows]
    return sorted(templates, key=lambda t: (t.priority, t.name.casefold(), t.name))


def template_of(session: Session, installation_id: int, template_id: int) -> Template:
    """One template with its items; TemplateNotFound for another installation's id."""
    row = _template_row(session, installation_id, template_id)
    return _domain(row, _items_of(session, installation_id, row.id))


def _template_row(session: Session, installation_id: int, template_id: int) -> ReviewTemplate:
    row = session.get(ReviewTemplate, template_id)
    if row is None or row.installation_id != installation_id:
        raise TemplateNotFound(template_id)
    return row


def _items_of(session: Session, installation_id: int, template_id: int) -> list[ReviewItem]:
    return list(
        session.scalars(
            sa.select(ReviewItem)
            .where(
                ReviewItem.installation_id == installation_id,
                ReviewItem.template_id == template_id,
            )
            .order_by(ReviewItem.position, ReviewItem.id)
        )
    )


def persona_names(session: Session, installation_id: int) -> list[str]:
    """The installation's persona names, which a template's audience may list."""
    return list(
        session.scalars(
            sa.select(Persona.name)
            .where(Persona.installation_id == installation_id)
            .order_by(Persona.name)
        )
    )


def template_form(template: Template) -> TemplateForm:
    """A stored template as its form shows it."""
    return TemplateForm(
        name=template.name,
        description=template.description,
        priority=str(template.priority),
        enabled=template.enabled,
        audience={kind.value: sorted(template.audience.of(kind)) for kind in AudienceKind},
        items=tuple(
            ItemRow(
                label=item.label,
                help=item.help,
                required=item.required,
                position=str(position),
                item_id=item.item_id,
            )
            for position, item in enumerate(template.items, start=1)
        ),
    )


def save_template(
    session: Session,
    installation: Installation,
    form: TemplateForm,
    *,
    template_id: int | None = None,
    now: datetime,
) -> Template:
    """Create or update a template and its items from the form, and commit.

    Items keep their ids (and so the checks made on them) when edited or moved; rows marked
    for removal, and items the form no longer has, are deleted. Raises InvalidTemplate with a
    message per field, TemplateNotFound for another installation's template.
    """
    row = _template_row(session, installation.id, template_id) if template_id else None
    errors: dict[str, str] = {}
    try:
        parsed = parse_template(
            form, personas=persona_names(session, installation.id), template_id=template_id
        )
    except InvalidTemplate as invalid:
        errors, parsed = invalid.errors, None
    clash = session.scalar(
        sa.select(ReviewTemplate.id).where(
            ReviewTemplate.installation_id == installation.id,
            ReviewTemplate.name == " ".join(form.name.split()),
        )
    )
    if clash is not None and clash != template_id and "name" not in errors:
        errors["name"] = "another checklist has this name"
    existing = {i.id: i for i in _items_of(session, installation.id, row.id)} if row else {}
    for index, item_row in enumerate(form.items):
        if item_row.item_id is not None and item_row.item_id not in existing:
            errors[f"items-{index}-label"] = "this item is no longer in the checklist; reload"
    if errors or parsed is None:
        raise InvalidTemplate(errors)
    if row is None:
        row = ReviewTemplate(installation_id=installation.id, created_at=now)
        session.add(row)
    row.name = parsed.name
    row.description = parsed.description
    row.audience = parsed.audience.as_json()
    row.priority = parsed.priority
    row.enabled = parsed.enabled
    row.updated_at = now
    session.flush()
    kept: set[int] = set()
    for position, item in enumerate(parsed.items, start=1):
        stored = existing.get(item.item_id) if item.item_id is not None else None
        if stored is None:
            stored = ReviewItem(installation_id=installation.id, template_id=row.id)
            session.add(stored)
        stored.position = position
        stored.label = item.label
        stored.help_text = item.help
        stored.required = item.required
        if item.item_id is not None:
            kept.add(item.item_id)
    for item_id, stored in existing.items():
        if item_id not in kept:
            session.delete(stored)
    session.commit()
    return template_of(session, installation.id, row.id)


def set_template_enabled(
    session: Session, installation: Installation, template_id: int, *, enabled: bool, now: datetime
) -> Template:
    """Turn a template on or off; reviews already begun on it carry on."""
    row = _template_row(session, installation.id, template_id)
    row.enabled = enabled
    row.updated_at = now
    session.commit()
    return template_of(session, installation.id, template_id)


# A ticket's review -------------------------------------------------------------------------


@dataclass(frozen=True)
class CardItem:
    """One item on a ticket's review, and who checked it when (None: not checked)."""

    item_id: int
    label: str
    help: str
    required: bool
    checked_by: str | None = None
    checked_at: datetime | None = None

    @property
    def checked(self) -> bool:
        return self.checked_at is not None


@dataclass(frozen=True)
class ReviewCard:
    """What the sidebar's review card shows: everything a template needs, no Flask."""

    review_id: int
    ticket_id: str
    template_name: str
    description: str
    audience: str
    items: tuple[CardItem, ...]
    progress: Progress
    started_at: datetime
    completed_at: datetime | None
    completed_by: str | None


@dataclass(frozen=True)
class CheckOutcome:
    """The card after a check, and a sentence saying what happened."""

    card: ReviewCard
    message: str
    duplicate: bool = False


def review_card(
    session: Session,
    installation: Installation,
    *,
    ticket_id: str,
    requester: Person,
    now: datetime,
) -> ReviewCard | None:
    """The ticket's review card, starting the review if a template fits the customer now.

    None when the ticket has no review and none fits (not a customer, or no template for
    their segments). Commits when it starts a review.
    """
    review = _review_of(session, installation.id, ticket_id)
    if review is None:
        review = _start_review(
            session, installation, ticket_id=ticket_id, requester=requester, now=now
        )
        if review is None:
            return None
    return _card(session, installation, review)


def _review_of(session: Session, installation_id: int, ticket_id: str) -> AccountReview | None:
    return session.scalars(
        sa.select(AccountReview).where(
            AccountReview.installation_id == installation_id, AccountReview.ticket_id == ticket_id
        )
    ).first()


def _start_review(
    session: Session,
    installation: Installation,
    *,
    ticket_id: str,
    requester: Person,
    now: datetime,
) -> AccountReview | None:
    templates = [t for t in list_templates(session, installation.id) if t.enabled and t.items]
    if not templates:
        return None
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    if customer is None:
        return None
    profile = segmentation.profile_for_customer(session, installation, customer, now=now)
    segments = CustomerSegments(
        tier=profile.tier.value,
        rfm_segment=profile.rfm.segment.value if profile.rfm else None,
        lifecycle_stage=profile.lifecycle.stage.value if profile.lifecycle else None,
        personas=frozenset(match.name for match in profile.personas),
    )
    template = template_for(templates, segments)
    if template is None or template.template_id is None:
        return None
    review = AccountReview(
        installation_id=installation.id,
        ticket_id=ticket_id,
        template_id=template.template_id,
        requester_id=requester.id,
        customer_id=customer.id,
        started_at=now,
    )
    session.add(review)
    try:
        session.commit()
    except IntegrityError:
        # Another view of the same ticket started it a moment ago: use that one.
        session.rollback()
        return _review_of(session, installation.id, ticket_id)
    return review


def _card(session: Session, installation: Installation, review: AccountReview) -> ReviewCard:
    template = template_of(session, installation.id, review.template_id)
    checks = {
        check.item_id: check
        for check in session.scalars(
            sa.select(ReviewCheck).where(
                ReviewCheck.installation_id == installation.id,
                ReviewCheck.review_id == review.id,
            )
        )
    }
    names = agent_names(
        session,
        installation,
        [c.checked_by for c in checks.values()] + [review.completed_by],
    )
    items = tuple(
        CardItem(
            item_id=item.item_id,
            label=item.label,
            help=item.help,
            required=item.required,
            checked_by=names.get(checks[item.item_id].checked_by or "", "an agent")
            if item.item_id in checks
            else None,
            checked_at=checks[item.item_id].checked_at if item.item_id in checks else None,
        )
        for item in template.items
        if item.item_id is not None
    )
    return ReviewCard(
        review_id=review.id,
        ticket_id=review.ticket_id,
        template_name=template.name,
        description=template.description,
        audience=template.audience.describe(),
        items=items,
        progress=progress(template.items, set(checks)),
        started_at=review.started_at,
        completed_at=review.completed_at,
        completed_by=names.get(review.completed_by or "", "an agent")
        if review.completed_at
        else None,
    )


def agent_names(
    session: Session, installation: Installation, agent_ids: Iterable[str | None]
) -> dict[str, str]:
    """Agents by name where the service knows them (the demo's users), else by helpdesk id."""
    wanted = {agent_id for agent_id in agent_ids if agent_id}
    names = {agent_id: f"agent {agent_id}" for agent_id in wanted}
    if wanted and installation.platform == demo.PLATFORM:
        for external_id, name in session.execute(
            sa.select(DemoUser.external_id, DemoUser.name).where(
                DemoUser.installation_id == installation.id, DemoUser.external_id.in_(wanted)
            )
        ):
            names[external_id] = name
    return names


def check_item(
    session: Session,
    installation: Installation,
    *,
    ticket_id: str,
    requester: Person,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
) -> CheckOutcome:
    """Check (`checked` = "true") or uncheck an item of the ticket's review, once per key.

    `fields`: `item` (the item's id), `checked` and `idempotency_key`. The ticket and the
    requester come from the helpdesk, never the page. A key already recorded gets the card
    as it is now; checking a checked item changes nothing and says who did. Completing the
    last required item completes the review, in the same transaction. Raises InvalidCheck
    with a message per field, ReviewNotFound when the ticket has no review.
    """
    key = _text(fields.get("idempotency_key"))
    errors: dict[str, str] = {}
    if not IDEMPOTENCY_KEY.fullmatch(key):
        errors["idempotency_key"] = "expected 8 to 64 letters, digits, _ or -"
    item_text = _text(fields.get("item"))
    if not item_text.isdigit():
        errors["item"] = "expected the id of an item on this checklist"
    checked_text = _text(fields.get("checked"))
    if checked_text not in ("true", "false"):
        errors["checked"] = "expected true or false"
    if errors:
        raise InvalidCheck(errors)
    if _recorded(session, installation.id, key):
        card = review_card(session, installation, ticket_id=ticket_id, requester=requester, now=now)
        if card is None:
            raise ReviewNotFound(ticket_id)
        return CheckOutcome(card, "Already recorded.", duplicate=True)
    review = _review_of(session, installation.id, ticket_id)
    if review is None:
        raise ReviewNotFound(ticket_id)
    item = session.get(ReviewItem, int(item_text))
    if (
        item is None
        or item.installation_id != installation.id
        or item.template_id != review.template_id
    ):
        raise InvalidCheck({"item": "not an item on this ticket's checklist"})
    _lock_review(session, review.id)
    session.refresh(review)
    checked = checked_text == "true"
    existing = session.scalars(
        sa.select(ReviewCheck).where(
            ReviewCheck.review_id == review.id, ReviewCheck.item_id == item.id
        )
    ).first()
    base = {
        "installation_id": installation.id,
        "ticket_id": ticket_id,
        "requester_id": review.requester_id,
        "customer_id": review.customer_id,
        "agent_id": agent_id,
        "exception_key": "",
        "currency": installation.currency,
        "text": "",
        "review_template_id": review.template_id,
        "created_at": now,
    }
    if checked and existing is None:
        session.add(
            ReviewCheck(
                installation_id=installation.id,
                review_id=review.id,
                item_id=item.id,
                checked_by=agent_id,
                checked_at=now,
            )
        )
        session.add(
            Action(
                kind=ReviewActionKind.CHECKED.value,
                review_item_id=item.id,
                idempotency_key=key,
                **base,
            )
        )
        message = f"Checked: {item.label}."
    elif not checked and existing is not None:
        session.delete(existing)
        session.add(
            Action(
                kind=ReviewActionKind.UNCHECKED.value,
                review_item_id=item.id,
                idempotency_key=key,
                **base,
            )
        )
        message = f"Unchecked: {item.label}."
    else:
        session.rollback()
        card = _card(session, installation, review)
        state = next(i for i in card.items if i.item_id == item.id)
        if state.checked:
            return CheckOutcome(card, f"Already checked by {state.checked_by}.", duplicate=True)
        return CheckOutcome(card, "Already unchecked.", duplicate=True)
    session.flush()
    done = set(
        session.scalars(sa.select(ReviewCheck.item_id).where(ReviewCheck.review_id == review.id))
    )
    state_now = progress(template_of(session, installation.id, review.template_id).items, done)
    if state_now.complete and review.completed_at is None:
        review.completed_at = now
        review.completed_by = agent_id
        session.add(
            Action(
                kind=ReviewActionKind.COMPLETED.value,
                idempotency_key=_completion_key(key),
                **base,
            )
        )
        message += " Review complete."
    elif not state_now.complete and review.completed_at is not None:
        review.completed_at = None
        review.completed_by = None
        message += " The review is open again."
    try:
        session.commit()
    except IntegrityError:
        # The same key, or the same item, won a race: show what was recorded.
        session.rollback()
        card = review_card(session, installation, ticket_id=ticket_id, requester=requester, now=now)
        if card is None:
            raise
        return CheckOutcome(card, "Already recorded.", duplicate=True)
    return CheckOutcome(_card(session, installation, review), message)


def _lock_review(session: Session, review_id: int) -> None:
    """Serialize changes to one review until commit, so two agents checking its last two
    required items at once cannot both miss that it is complete (a row lock on PostgreSQL,
    the write lock on SQLite), as the exceptions service locks grants.
    """
    session.execute(
        sa.update(AccountReview)
        .where(AccountReview.id == review_id)
        .values(id=AccountReview.id)
        .execution_options(synchronize_session=False)
    )


def _completion_key(key: str) -> str:
    """The completion's own key, derived from the check that completed it (same length rule)."""
    return "review-done-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _recorded(session: Session, installation_id: int, key: str) -> bool:
    return (
        session.scalar(
            sa.select(Action.id).where(
                Action.installation_id == installation_id, Action.idempotency_key == key
            )
        )
        is not None
    )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# The action log ----------------------------------------------------------------------------


def describe_review_action(session: Session, action: Action) -> str:
    """Say a review action in one sentence, for the ticket's note and for people reading logs.

    "Account review “High-value account review”: checked “Confirm the delivery address”." The
    template and item are read as they are now; one since removed is said to be.
    """
    template = (
        session.get(ReviewTemplate, action.review_template_id)
        if action.review_template_id is not None
        else None
    )
    if template is not None and template.installation_id != action.installation_id:
        template = None
    review = f"Account review “{template.name}”" if template else "Account review"
    item = (
        session.get(ReviewItem, action.review_item_id)
        if action.review_item_id is not None
        else None
    )
    if item is not None and item.installation_id != action.installation_id:
        item = None
    what = f"“{item.label}”" if item else "an item since removed from the checklist"
    match action.kind:
        case ReviewActionKind.CHECKED:
            return f"{review}: checked {what}."
        case ReviewActionKind.UNCHECKED:
            return f"{review}: unchecked {what}."
        case ReviewActionKind.COMPLETED:
            return f"{review} completed: every required item is checked."
        case _:
            return f"{review}: {action.kind.replace('_', ' ')}."


def review_actions(session: Session, installation_id: int, ticket_id: str) -> Sequence[Action]:
    """The review actions on a ticket, oldest first."""
    return list(
        session.scalars(
            sa.select(Action)
            .where(
                Action.installation_id == installation_id,
                Action.ticket_id == ticket_id,
                Action.kind.in_(REVIEW_KINDS),
            )
            .order_by(Action.created_at, Action.id)
        )
    )


def _register_note_sentence() -> None:
    """Tell the outbox's note builder how review actions read on the ticket."""
    from plugin.delivery import (
        notes as delivery_notes,  # the outbox's module; imported late to keep this light
    )

    delivery_notes.register_note_sentence(REVIEW_KINDS, describe_review_action)


_register_note_sentence()
