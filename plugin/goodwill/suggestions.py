"""What a ticket is offered: its rule context built from stored data, evaluated against the
installation's rule book, less what agents already did about it on this ticket.

No Flask here: the sidebar's card (`plugin/goodwill/views.py`) calls it. The context holds the
customer's profile facts and personas, mapped helpdesk facts, the ticket, the customer's
grants, this month's budgets and an order value. `ticket` and `requester` always come from the
helpdesk (never from the page).

- Order value (what a percent cost is a share of): the order the ticket names by its number
  (in its subject or description), if it is one of the customer's orders; else the latest,
  since a ticket is most often about the last thing bought. None without orders, so a percent
  gesture is withheld as unpriced for a prospect.
- Ticket handling is applied once per ticket: once handled, the card shows it done (with how
  its delivery stands) instead of offering it again, even before the ticket shows the change.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers import segmentation
from plugin.customers.recent_orders import RecentOrders
from plugin.domain.exceptions import (
    AmountLimits,
    BudgetStatus,
    ExceptionType,
    Goodwill,
    PercentCost,
)
from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.rule_evaluation import (
    ActionSuggestion,
    Evaluation,
    RuleContext,
    Suggestion,
    Withheld,
)
from plugin.domain.rules import TicketAction
from plugin.domain.segments import SegmentProfile
from plugin.domain.wording import N_
from plugin.goodwill.action_log import ActionKind, grants_to, handling_of, ticket_actions
from plugin.goodwill.book_cache import RuleBook
from plugin.goodwill.catalog import budget_statuses
from plugin.goodwill.holdouts import Exposure, TicketExposures, customer_key, split_held_out
from plugin.goodwill.money import exact_amount
from plugin.goodwill.rulebook import rule_book
from plugin.helpdesks import field_mappings
from plugin.models import Action, Customer, Delivery, Installation
from plugin.sidebar.read_cache import ReadCache
from plugin.sidebar.recognition import card_of, customer_id_of, stored_orders
from plugin.sidebar.ticket_state import TicketState

T = TypeVar("T")


@dataclass(frozen=True)
class OrderValue:
    """The order a percent cost is a share of, and how it was chosen, in words."""

    cents: int
    description: str  # "order ORD-10234, named in the ticket" / "the latest order, ORD-10234"
    number: str = ""  # the order's number, and whether the ticket named it (else the latest)
    named: bool = False


@dataclass(frozen=True)
class TicketContext:
    """Who and what a ticket is about, and the rule context built from it."""

    rule_context: RuleContext
    customer_id: int | None
    requester: Person
    order_value: OrderValue | None


def ticket_context(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
    reads: ReadCache | None = None,
    known: TicketState | None = None,
) -> TicketContext:
    """Build what the rules are evaluated against for this ticket, from stored data.

    `ticket` and `requester` come from the helpdesk (never from the page). `reads` (only to
    show the card, never to record an action) takes the customer's profile, the field
    mappings, the budgets' spending, who the customer is, their grants and the order the
    ticket is about from the sidebar's per-process read cache, as the banner does: a few
    seconds old at most on another process (dropped at once by a write in this one), and what
    the action's own evaluation decides is read fresh. `known` (the card's, read just now)
    says when the customer had no recent grants to read.
    """
    iid = installation.id

    def read(key: Hashable, load: Callable[[], T]) -> T:
        return reads.get(iid, key, load) if reads is not None else load()

    cid = customer_id_of(session, iid, requester, reads=reads)
    profile: SegmentProfile | None = None
    if cid is not None and reads is not None:
        card = card_of(session, installation, cid, reads=reads, now=now)
        if card is None:
            cid = None  # forgotten in another process since this one cached who it was
        else:
            profile = card.profile
    elif cid is not None:
        customer = session.get(Customer, cid)
        assert customer is not None, "a customer found in this very session"
        profile = segmentation.profile_for_customer(session, installation, customer, now=now)

    def mappings() -> list[field_mappings.FactMapping]:
        return field_mappings.list_mappings(session, installation)

    def budgets() -> tuple[BudgetStatus, ...]:
        return budget_statuses(session, iid, now=now)

    facts = field_mappings.mapped_facts(
        requester, reads.get(iid, "mappings", mappings) if reads else mappings()
    )
    order_value = (
        _order_value(
            stored_orders(session, iid, cid, ticket_text=ticket.order_text, now=now, reads=reads)
        )
        if cid is not None
        else None
    )
    context = RuleContext(
        ticket=ticket,
        now=now,
        customer=profile.facts() if profile else {},
        personas=tuple(match.name for match in profile.personas) if profile else (),
        facts=facts,
        grants=()
        if known is not None and known.customer_id == cid and not known.has_grants
        else read(
            ("grants", cid, requester.id),
            lambda: grants_to(session, iid, cid, requester.id, now=now),
        ),
        budgets=reads.get(iid, "budget_statuses", budgets) if reads else budgets(),
        order_value_cents=order_value.cents if order_value else None,
    )
    return TicketContext(context, cid, requester, order_value)


def _order_value(stored: RecentOrders) -> OrderValue | None:
    """The order the ticket names by number, or else the customer's latest order."""
    if stored.named is not None:
        named = stored.named
        return OrderValue(
            named.amount_cents,
            f"order {named.number}, named in the ticket",
            named.number,
            named=True,
        )
    if not stored.orders:
        return None
    latest = stored.orders[0]
    return OrderValue(latest.amount_cents, f"the latest order, {latest.number}", latest.number)


@dataclass(frozen=True)
class Offer:
    """A suggestion as the card shows it, with what limits the agent's choice of amount."""

    suggestion: Suggestion
    editable: AmountLimits | None
    approval_threshold_cents: int | None
    # For a share of an order: "10% of the order, at least $5 — of the latest order, ORD-1 ($90)"
    priced_from: str | None = None

    @property
    def key(self) -> str:
        return self.suggestion.exception.key

    def limits_phrase(self, currency: str) -> str:
        """What the agent may give, in one phrase: "$5 to $75; a supervisor approves above $25"."""
        if self.editable is None:
            return ""
        low = exact_amount(self.editable.min_cents, currency)
        high = exact_amount(self.editable.max_cents, currency)
        threshold = self.approval_threshold_cents
        if threshold is not None and threshold < self.editable.max_cents:
            return N_(
                "%(low)s to %(high)s; a supervisor approves above %(threshold)s.",
                low=low,
                high=high,
                threshold=exact_amount(threshold, currency),
            )
        return N_("%(low)s to %(high)s.", low=low, high=high)


@dataclass(frozen=True)
class SuggestionsCard:
    """Everything the sidebar's suggestions card shows for one ticket."""

    offers: tuple[Offer, ...]
    actions: tuple[ActionSuggestion, ...]
    withheld: tuple[Withheld, ...]
    running_out: tuple[BudgetStatus, ...]
    goodwill: Goodwill
    done: tuple[Action, ...]  # on this ticket, newest first
    catalog: Mapping[str, ExceptionType]
    order_value: OrderValue | None
    is_customer: bool
    currency: str
    # How the ticket handling done on this ticket stands on its way there, by action id.
    deliveries: Mapping[int, Delivery] = field(default_factory=dict)
    # Each rule's suggestion on this ticket, shown or held out, for the effects report.
    exposures: TicketExposures | None = None


@dataclass(frozen=True)
class EvaluatedTicket:
    """A ticket's evaluation, with the rule book and the context it was evaluated with."""

    book: RuleBook
    context: TicketContext
    evaluation: Evaluation


def evaluate_ticket(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
    reads: ReadCache | None = None,
    known: TicketState | None = None,
) -> EvaluatedTicket:
    """Evaluate the installation's rules for the ticket now, as the card and an action do
    (the card with `reads` and `known`, see `ticket_context`). The rule book is always the
    current one: its revision makes a rule change in force on the next request in every
    process (tests/e2e/test_scale_out.py holds that bound at zero)."""
    revision = known.rule_book_revision if known is not None else None
    book = rule_book(session, installation, revision=revision)
    context = ticket_context(
        session,
        installation,
        ticket=ticket,
        requester=requester,
        now=now,
        reads=reads,
        known=known,
    )
    return EvaluatedTicket(book, context, book.compiled.evaluate(context.rule_context))


def shown_and_held_out(
    installation_id: int, found: EvaluatedTicket, requester: Person
) -> tuple[tuple[Suggestion, ...], tuple[Exposure, ...]]:
    """The suggestions the agent may see (those a rule's holdout keeps from this customer
    left out), and each rule's exposure: the card and an action decide alike."""
    return split_held_out(
        installation_id,
        found.evaluation.suggestions,
        rules=found.book.rules,
        rule_ids=found.book.rule_ids,
        who=customer_key(found.context.customer_id, requester.id),
    )


def suggestions_for(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    now: datetime,
    reads: ReadCache | None = None,
    known: TicketState | None = None,
) -> SuggestionsCard:
    """The ticket's ranked suggestions, less those an agent already acted on for this ticket.

    With `reads`, what changes rarely is read through the sidebar's read cache (see
    `ticket_context`); what this ticket's agents did on it is always read fresh: `known`,
    what the view read of the ticket just now, says whether there is any to read.
    """
    found = evaluate_ticket(
        session,
        installation,
        ticket=ticket,
        requester=requester,
        now=now,
        reads=reads,
        known=known,
    )
    done = (
        ticket_actions(session, installation.id, ticket.id)
        if known is None or known.has_actions
        else []
    )
    # An action undone within its window settles nothing: the offer is back on the card.
    settled = {
        action.exception_key
        for action in done
        if action.kind != ActionKind.HANDLED and action.undone_at is None
    }
    handled: dict[TicketAction, int] = {}
    for action in done:
        handling = handling_of(action) if action.undone_at is None else None
        if handling is not None:
            handled.setdefault(handling, action.id)
    order = found.context.order_value
    shown, exposures = shown_and_held_out(installation.id, found, requester)
    offers = tuple(
        Offer(
            suggestion,
            suggestion.exception.editable,
            found.book.rules[suggestion.rule.id].approval_threshold_cents,
            priced_from=_priced_from(suggestion.exception, order, installation.currency),
        )
        for suggestion in shown
        if suggestion.exception.key not in settled
    )
    return SuggestionsCard(
        offers=offers,
        actions=tuple(a for a in found.evaluation.actions if a.action not in handled),
        withheld=tuple(w for w in found.evaluation.withheld if w.exception.key not in settled),
        running_out=tuple(
            dict.fromkeys(
                o.suggestion.budget
                for o in offers
                if o.suggestion.budget is not None and o.suggestion.budget.running_out
            )
        ),
        goodwill=found.evaluation.goodwill,
        done=tuple(done),
        catalog=found.book.catalog,
        order_value=found.context.order_value,
        is_customer=found.context.customer_id is not None,
        currency=installation.currency,
        deliveries=_deliveries(session, installation.id, handled.values()),
        exposures=TicketExposures(
            requester_id=requester.id,
            customer_id=found.context.customer_id,
            segment=str(found.context.rule_context.customer.get("tier") or ""),
            exposures=exposures,
        ),
    )


def _priced_from(exception: ExceptionType, order: OrderValue | None, currency: str) -> str | None:
    """How a share of an order was priced: "10% of order ORD-1, named in the ticket ($90.00)".

    An amount the agent may edit has its limits said once, next to the amount, so the
    estimate's own bounds are not repeated here.
    """
    cost = exception.cost
    if not isinstance(cost, PercentCost) or order is None:
        return None
    share = (
        N_("%(share)s of the order", share=f"{cost.percent.normalize():f}%")
        if exception.editable is not None
        else cost.describe(currency)
    )
    value = exact_amount(order.cents, currency)
    if order.named:
        return N_(
            "%(share)s — of order %(number)s, named in the ticket (%(value)s)",
            share=share,
            number=order.number,
            value=value,
        )
    return N_(
        "%(share)s — of the latest order, %(number)s (%(value)s)",
        share=share,
        number=order.number,
        value=value,
    )


def _deliveries(
    session: Session, installation_id: int, action_ids: Iterable[int]
) -> dict[int, Delivery]:
    """The delivery rows of these actions, by action id (no query for none)."""
    ids = sorted(action_ids)
    if not ids:
        return {}
    return {
        row.action_id: row
        for row in session.scalars(
            sa.select(Delivery).where(
                Delivery.installation_id == installation_id, Delivery.action_id.in_(ids)
            )
        )
    }
