"""Each ticket's account review: its card, and the items agents check on it.

No Flask here: the sidebar (`plugin/reviews/views.py`) and any other helpdesk's route call it.
Every query is scoped to one installation. `review_card` finds the ticket's review, or starts
one when a template fits the customer (the review is due from then on; reports count it), and
says who checked what and when. `check_item` checks or unchecks an item once per idempotency
key, and marks the review complete when the last required item is checked; each of these is an
action in the action log (`plugin/reviews/actions.py`).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.domain.field_errors import FieldErrors
from plugin.domain.helpdesk import Person
from plugin.domain.reviews import CustomerSegments, Progress, progress, template_for
from plugin.domain.reviews import ReviewTemplate as Template
from plugin.domain.wording import N_
from plugin.helpdesks import demo
from plugin.models import AccountReview, Action, DemoUser, Installation, ReviewCheck, ReviewItem
from plugin.reviews.actions import ReviewActionKind
from plugin.reviews.checklists import list_templates, template_of
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.recognition import card_of, customer_id_of

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")


class ReviewNotFound(LookupError):
    """No review on this ticket, or no such item on it."""


class InvalidCheck(FieldErrors):
    """A check request that does not validate: a message per field."""


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
    reads: ReadCache | None = None,
    has_review: bool = True,
) -> ReviewCard | None:
    """The ticket's review card, starting the review if a template fits the customer now.

    None when the ticket has no review and none fits (not a customer, or no template for
    their segments). Commits when it starts a review. `reads` (the sidebar's GET) takes the
    templates, who the customer is and their profile from the per-process read cache, as the
    other cards do: a few seconds old at most on another process. The review and its checks
    are always read; `has_review` False: the caller read just now that there is none.
    """
    review = _review_of(session, installation.id, ticket_id) if has_review else None
    if review is None:
        review = _start_review(
            session, installation, ticket_id=ticket_id, requester=requester, now=now, reads=reads
        )
        if review is None:
            return None
    return _card(session, installation, review)


def _review_of(session: Session, installation_id: int, ticket_id: str) -> AccountReview | None:
    bound = {"installation_id": installation_id, "ticket_id": ticket_id}
    return session.scalars(review_query(), bound).first()


@cache
def review_query() -> sa.Select[AccountReview]:
    """Built once, with bound values: every review card runs it."""
    return sa.select(AccountReview).where(
        AccountReview.installation_id == sa.bindparam("installation_id"),
        AccountReview.ticket_id == sa.bindparam("ticket_id"),
    )


def _start_review(
    session: Session,
    installation: Installation,
    *,
    ticket_id: str,
    requester: Person,
    now: datetime,
    reads: ReadCache | None = None,
) -> AccountReview | None:
    def templates_now() -> list[Template]:
        return [t for t in list_templates(session, installation.id) if t.enabled and t.items]

    templates = (
        reads.get(installation.id, "review templates", templates_now) if reads else templates_now()
    )
    if not templates:
        return None
    customer_id = customer_id_of(session, installation.id, requester, reads=reads)
    card = (
        card_of(session, installation, customer_id, reads=reads, now=now)
        if customer_id is not None
        else None
    )
    if customer_id is None or card is None:
        return None
    profile = card.profile
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
        customer_id=customer_id,
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
        errors["idempotency_key"] = N_("expected 8 to 64 letters, digits, _ or -")
    item_text = _text(fields.get("item"))
    if not item_text.isdigit():
        errors["item"] = N_("expected the id of an item on this checklist")
    checked_text = _text(fields.get("checked"))
    if checked_text not in ("true", "false"):
        errors["checked"] = N_("expected true or false")
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
        raise InvalidCheck({"item": N_("not an item on this ticket's checklist")})
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
        message: str = N_("Checked: %(item)s.", item=item.label)
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
        message = N_("Unchecked: %(item)s.", item=item.label)
    else:
        session.rollback()
        card = _card(session, installation, review)
        state = next(i for i in card.items if i.item_id == item.id)
        if state.checked:
            return CheckOutcome(
                card, N_("Already checked by %(name)s.", name=state.checked_by), duplicate=True
            )
        return CheckOutcome(card, N_("Already unchecked."), duplicate=True)
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
        message = N_("%(said)s Review complete.", said=message)
    elif not state_now.complete and review.completed_at is not None:
        review.completed_at = None
        review.completed_by = None
        message = N_("%(said)s The review is open again.", said=message)
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
