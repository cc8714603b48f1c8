"""Recording what agents do about a ticket's suggestions, and supervisors' decisions on
escalated ones.

No Flask here: the sidebar's card and the console call it. `record_action` checks an agent's
apply, dismiss or escalate against the rules as they stand at that moment, and writes it once
(idempotency key); `resolve_escalation` approves or refuses an escalated one. An agent's apply
of a rule's ticket handling (raise the priority, add a tag, route to a group) is recorded the
same way, as a handled action that the outbox applies to the ticket with its note. Every query
is scoped to one installation; each record is committed here, whole or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.domain.exceptions import AmountLimits, ExceptionType, SegmentRef, granted_within
from plugin.domain.gesture_binding import KIND_NAMES
from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.rules import ActionKind as HandlingKind
from plugin.domain.rules import TicketAction
from plugin.domain.wording import N_, ngettext
from plugin.gestures import planning as gestures
from plugin.gestures.interface import GestureKind
from plugin.goodwill.action_log import ActionKind, describe_action, grants_to, handling_of
from plugin.goodwill.book_cache import RuleBook
from plugin.goodwill.catalog import budget_statuses
from plugin.goodwill.errors import ActionRefused, InvalidAction, NotFound
from plugin.goodwill.money import exact_amount
from plugin.goodwill.rulebook import rule_book
from plugin.goodwill.suggestions import evaluate_ticket, shown_and_held_out
from plugin.models import Action, Installation

TEXT_MAX_LENGTH = 1000
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")


class AgentRequest(StrEnum):
    """What an agent asks for from the sidebar's card."""

    APPLY = "apply"
    DISMISS = "dismiss"
    ESCALATE = "escalate"
    HANDLE = "handle"  # apply a rule's ticket handling


@dataclass(frozen=True)
class ActionOutcome:
    """What was recorded (or had been, for a repeated request), in a sentence for the agent."""

    action: Action
    message: str
    duplicate: bool = False


def record_action(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    agent_id: str | None,
    fields: Mapping[str, object],
    now: datetime,
) -> ActionOutcome:
    """Record an agent's apply, dismiss or escalate of a suggested exception, once.

    `fields` are as the card's forms send them: `kind` (apply, dismiss, escalate), `exception`
    (the catalog key), `amount` (in currency units; only an editable amount may be given, and
    the estimate is used when it is absent) or `amount_cents`, `reason` (a code of the entry's
    apply or dismiss reasons), `text` and `idempotency_key`. Kind `handle` applies a rule's
    ticket handling instead: `handling` (raise_priority, add_tag, route_to_group) and
    `handling_value`, recorded only while the rules suggest it for the ticket.

    The rules are evaluated again now: what a cap or budget forbids at this moment is refused
    (ActionRefused, saying why), and an amount above the rule's approval threshold is recorded
    as escalated instead of applied. A request whose idempotency key was recorded already gets
    that record back. Raises InvalidAction with a message per field.
    """
    key = _text(fields.get("idempotency_key"))
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidAction({"idempotency_key": "expected 8 to 64 letters, digits, _ or -"})
    book = rule_book(session, installation)
    earlier = _recorded(session, installation.id, key)
    if earlier is not None:
        return _outcome(earlier, book.catalog, duplicate=True)
    if _text(fields.get("kind")) == AgentRequest.HANDLE:
        return _record_handling(
            session,
            installation,
            ticket=ticket,
            requester=requester,
            agent_id=agent_id,
            fields=fields,
            key=key,
            now=now,
        )
    request, entry, amount, reason, text = _validated(fields, book)
    customer = customers.find_customer(session, installation_id=installation.id, person=requester)
    if request is not AgentRequest.DISMISS:
        _lock_for_grant(session, installation.id)
    found = evaluate_ticket(session, installation, ticket=ticket, requester=requester, now=now)
    shown, _ = shown_and_held_out(installation.id, found, requester)
    suggestion = next((s for s in shown if s.exception.key == entry.key), None)
    withheld = next((w for w in found.evaluation.withheld if w.exception.key == entry.key), None)
    if suggestion is None and any(
        s.exception.key == entry.key for s in found.evaluation.suggestions
    ):
        # Never on this customer's card: a stale or hand-made form cannot give it either, or
        # the effects report's held-out group would not be held out.
        raise ActionRefused(
            N_(
                "%(name)s is held out for this customer: the rule measures its effect by "
                "leaving it out for some customers, and this is one of them.",
                name=entry.name,
            )
        )
    if suggestion is not None:
        made_by = suggestion.rule
    elif withheld is not None and request is AgentRequest.DISMISS:
        made_by = withheld.rule  # withheld since the card was shown; dismissing it is harmless
    elif withheld is not None:
        raise ActionRefused(
            N_(
                "%(name)s can't be given now: %(why)s.",
                name=entry.name,
                why=withheld.explanation,
            )
        )
    else:
        raise ActionRefused(
            N_("%(name)s is not suggested for this ticket any more.", name=entry.name)
        )
    kind, charged = ActionKind.DISMISSED, None
    if request is not AgentRequest.DISMISS:
        assert suggestion is not None
        amount = suggestion.cost_cents if amount is None else amount
        budget = suggestion.budget
        if budget is not None and not budget.allows(amount):
            raise ActionRefused(
                N_(
                    "%(amount)s would pass the %(segment)s budget: %(status)s.",
                    amount=exact_amount(amount, entry.currency),
                    segment=budget.budget.segment.label,
                    status=budget.sentence(entry.currency),
                )
            )
        rule = found.book.rules[suggestion.rule.id]
        threshold = rule.approval_threshold_cents
        above = threshold is not None and amount > threshold
        kind = (
            ActionKind.ESCALATED
            if request is AgentRequest.ESCALATE or above
            else ActionKind.APPLIED
        )
        charged = rule.budget
    action = Action(
        installation_id=installation.id,
        ticket_id=ticket.id,
        requester_id=requester.id,
        customer_id=customer.id if customer else None,
        agent_id=agent_id,
        kind=kind.value,
        exception_key=entry.key,
        amount_cents=amount,
        currency=entry.currency,
        reason_code=reason,
        text=text,
        rule_id=found.book.rule_ids.get(made_by.id),
        rule_version=made_by.version,
        budget_field=charged.field if charged else None,
        budget_value=charged.value if charged else None,
        idempotency_key=key,
        created_at=now,
    )
    giving = None
    if kind is not ActionKind.DISMISSED:
        # What the shop is to give, checked now and written with the action (or record only).
        giving = gestures.plan_gesture(
            session,
            installation,
            action=action,
            entry=entry,
            customer=customer,
            ticket=ticket,
            reason=next((r.label for r in entry.apply_reasons if r.code == reason), reason),
            now=now,
        )
    outcome = _commit_once(session, action, found.book.catalog)
    if giving is None or outcome.duplicate:
        return outcome
    # Where the agent sees it land: the card's "In the shop", below the offers.
    what = KIND_NAMES[GestureKind(giving.kind)]
    said = (
        N_(
            "%(recorded)s The shop will give %(what)s once a supervisor approves it: "
            "see In the shop.",
            recorded=outcome.message,
            what=what,
        )
        if kind is ActionKind.ESCALATED
        else N_(
            "%(recorded)s The shop will give %(what)s: see In the shop.",
            recorded=outcome.message,
            what=what,
        )
    )
    return replace(outcome, message=said)


def _record_handling(
    session: Session,
    installation: Installation,
    *,
    ticket: Ticket,
    requester: Person,
    agent_id: str | None,
    fields: Mapping[str, object],
    key: str,
    now: datetime,
) -> ActionOutcome:
    """Record an agent's apply of a rule's ticket handling, once per ticket, if the rules
    suggest it for the ticket now; a stale or forged request is refused (ActionRefused).

    Nothing is granted: the outbox applies it to the ticket with the action's note.
    """
    wanted = _handling(fields)
    found = evaluate_ticket(session, installation, ticket=ticket, requester=requester, now=now)
    suggested = next((s for s in found.evaluation.actions if s.action == wanted), None)
    if suggested is None:
        raise ActionRefused(
            N_(
                "%(action)s is not suggested for this ticket now, so nothing was recorded.",
                action=wanted.describe(),
            )
        )
    # Suggested until the ticket shows the change, but applied once: the outbox is on it.
    applied = session.scalars(
        sa.select(Action.id).where(
            Action.installation_id == installation.id,
            Action.ticket_id == ticket.id,
            Action.kind == ActionKind.HANDLED,
            Action.undone_at.is_(None),
            Action.handling == wanted.kind.value,
            Action.handling_value == wanted.value,
        )
    ).first()
    if applied is not None:
        raise ActionRefused(
            N_("%(action)s: done on this ticket already.", action=wanted.describe())
        )
    action = Action(
        installation_id=installation.id,
        ticket_id=ticket.id,
        requester_id=requester.id,
        customer_id=found.context.customer_id,
        agent_id=agent_id,
        kind=ActionKind.HANDLED.value,
        exception_key="",
        amount_cents=None,
        currency=installation.currency,
        reason_code=None,
        text="",
        rule_id=found.book.rule_ids.get(suggested.rule.id),
        rule_version=suggested.rule.version,
        handling=wanted.kind.value,
        handling_value=wanted.value,
        idempotency_key=key,
        created_at=now,
    )
    return _commit_once(session, action, found.book.catalog)


def _handling(fields: Mapping[str, object]) -> TicketAction:
    """The ticket handling a request names; InvalidAction when it names none."""
    kind, value = _text(fields.get("handling")), _text(fields.get("handling_value"))
    errors: dict[str, str] = {}
    if kind not in tuple(HandlingKind):
        errors["handling"] = "expected one of " + ", ".join(HandlingKind)
    if not value:
        errors["handling_value"] = "name the priority, tag or group"
    if errors:
        raise InvalidAction(errors)
    return TicketAction(HandlingKind(kind), value)


def _lock_for_grant(session: Session, installation_id: int) -> None:
    """Serialize the installation's grants until commit, so two agents cannot both take the
    last one a cap or a budget allows: whoever comes second waits, then sees the first's grant.

    A no-op update of the installation's row is the lock on both databases: a row lock on
    PostgreSQL, the write lock on SQLite. Agents click at human speed; the wait is short.
    """
    session.execute(
        sa.update(Installation)
        .where(Installation.id == installation_id)
        .values(id=Installation.id)
        .execution_options(synchronize_session=False)
    )


def _validated(
    fields: Mapping[str, object], book: RuleBook
) -> tuple[AgentRequest, ExceptionType, int | None, str, str]:
    """Check the request's fields: kind, exception, reason, text and an editable amount.

    Raises InvalidAction with every field's problem.
    """
    errors: dict[str, str] = {}
    request, amount_text = _request(fields)
    if request is None:
        errors["kind"] = N_("expected apply, dismiss or escalate")
    entry = book.catalog.get(_text(fields.get("exception")))
    if entry is None:
        errors["exception"] = N_("not in this helpdesk's catalog")
    text = _text(fields.get("text"))
    if len(text) > TEXT_MAX_LENGTH:
        errors["text"] = _at_most_characters()
    if entry is None or request is None:
        raise InvalidAction(errors)
    reasons = entry.dismiss_reasons if request is AgentRequest.DISMISS else entry.apply_reasons
    reason = _text(fields.get("reason"))
    if not any(r.code == reason for r in reasons):
        errors["reason"] = N_(
            "choose one of: %(reasons)s", reasons=", ".join(r.label for r in reasons)
        )
    amount = None
    if (
        request is not AgentRequest.DISMISS
        and entry.editable is not None
        and amount_text is not None
    ):
        amount = _amount(amount_text, entry.editable, entry.currency, errors)
    if errors:
        raise InvalidAction(errors)
    return request, entry, amount, reason, text


def _at_most_characters() -> str:
    return N_("at most %(count)s characters", count=f"{TEXT_MAX_LENGTH:,}")


def _request(fields: Mapping[str, object]) -> tuple[AgentRequest | None, object]:
    """The request's kind, and its amount: `amount` in units, or `amount_cents`.

    No amount at all (None) means the estimate; an empty one is a mistake to report.
    """
    kind = _text(fields.get("kind"))
    request = AgentRequest(kind) if kind in tuple(AgentRequest) else None
    if fields.get("amount_cents") not in (None, ""):
        cents = fields["amount_cents"]
        if isinstance(cents, int) and not isinstance(cents, bool):
            return request, Decimal(cents) / 100
        return request, "not cents"
    return request, fields.get("amount")


def _amount(raw: object, limits: AmountLimits, currency: str, errors: dict[str, str]) -> int | None:
    """An editable amount in currency units ("12.50"), in cents, within the limits."""
    low = exact_amount(limits.min_cents, currency)
    high = exact_amount(limits.max_cents, currency)
    if isinstance(raw, str) and not raw.strip():
        errors["amount"] = N_("enter an amount from %(low)s to %(high)s", low=low, high=high)
        return None
    try:
        units = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        errors["amount"] = N_(
            "expected an amount such as 12.50, from %(low)s to %(high)s", low=low, high=high
        )
        return None
    if not units.is_finite() or units != units.quantize(Decimal("0.01")):
        errors["amount"] = N_(
            "expected an amount in whole cents, from %(low)s to %(high)s", low=low, high=high
        )
        return None
    cents = int(units * 100)
    if limits.clamp(cents) != cents:
        errors["amount"] = N_("must be from %(low)s to %(high)s", low=low, high=high)
        return None
    return cents


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _recorded(session: Session, installation_id: int, key: str) -> Action | None:
    return session.scalars(
        sa.select(Action).where(
            Action.installation_id == installation_id, Action.idempotency_key == key
        )
    ).first()


def _commit_once(
    session: Session, action: Action, catalog: Mapping[str, ExceptionType]
) -> ActionOutcome:
    """Write the action; if the same key won a race, give back what was written."""
    session.add(action)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = _recorded(session, action.installation_id, action.idempotency_key)
        if earlier is None:
            raise
        return _outcome(earlier, catalog, duplicate=True)
    return _outcome(action, catalog)


def _outcome(
    action: Action, catalog: Mapping[str, ExceptionType], *, duplicate: bool = False
) -> ActionOutcome:
    handling = handling_of(action)
    if handling is not None:
        # The agent is told where it stands: recorded, not yet on the ticket.
        message = N_(
            "%(action)s: recorded, and on its way to the ticket.", action=handling.describe()
        )
        return ActionOutcome(action, message, duplicate)
    return ActionOutcome(action, describe_action(action, catalog), duplicate)


# Approvals ---------------------------------------------------------------------------------


def pending_escalations(session: Session, installation_id: int) -> list[Action]:
    """Escalated actions no one has approved or refused yet, oldest first."""
    decided = sa.select(Action.escalation_id).where(
        Action.installation_id == installation_id, Action.escalation_id.is_not(None)
    )
    return list(
        session.scalars(
            sa.select(Action)
            .where(
                Action.installation_id == installation_id,
                Action.kind == ActionKind.ESCALATED,
                Action.undone_at.is_(None),
                Action.id.not_in(decided),
            )
            .order_by(Action.created_at, Action.id)
        )
    )


def resolve_escalation(
    session: Session,
    installation: Installation,
    escalation_id: int,
    *,
    approve: bool,
    approver_id: str | None,
    text: str = "",
    idempotency_key: str,
    now: datetime,
) -> ActionOutcome:
    """Approve or refuse an escalated action, once; an approval is a grant from now.

    An approval checks the customer's cap (under the rule's current version) and the budget
    again at this moment and is refused (ActionRefused) when they forbid it. NotFound for an
    action of another installation or one that is not an escalation.
    """
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidAction({"idempotency_key": "expected 8 to 64 letters, digits, _ or -"})
    book = rule_book(session, installation)
    earlier = _recorded(session, installation.id, idempotency_key)
    if earlier is not None:
        return _outcome(earlier, book.catalog, duplicate=True)
    escalation = session.scalars(
        sa.select(Action).where(
            Action.id == escalation_id,
            Action.installation_id == installation.id,
            Action.kind == ActionKind.ESCALATED,
            Action.undone_at.is_(None),
        )
    ).first()
    if escalation is None:
        raise NotFound(f"There is no escalation {escalation_id} in this helpdesk.")
    decided = session.scalars(
        sa.select(Action).where(
            Action.installation_id == installation.id, Action.escalation_id == escalation.id
        )
    ).first()
    if decided is not None:
        raise ActionRefused(f"This escalation was {decided.kind} already.")
    if len(text) > TEXT_MAX_LENGTH:
        raise InvalidAction({"text": _at_most_characters()})
    if approve:
        _check_still_allowed(session, installation, book, escalation, now=now)
    decision = Action(
        installation_id=installation.id,
        ticket_id=escalation.ticket_id,
        requester_id=escalation.requester_id,
        customer_id=escalation.customer_id,
        agent_id=approver_id,
        kind=(ActionKind.APPROVED if approve else ActionKind.REFUSED).value,
        exception_key=escalation.exception_key,
        amount_cents=escalation.amount_cents,
        currency=escalation.currency,
        reason_code=escalation.reason_code,
        text=text,
        rule_id=escalation.rule_id,
        rule_version=escalation.rule_version,
        budget_field=escalation.budget_field,
        budget_value=escalation.budget_value,
        escalation_id=escalation.id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    gestures.on_approval(session, escalation, decision)
    try:
        return _commit_once(session, decision, book.catalog)
    except IntegrityError:
        # Another approver decided it between our check and our write.
        raise ActionRefused("This escalation was decided already.") from None


def _check_still_allowed(
    session: Session,
    installation: Installation,
    book: RuleBook,
    escalation: Action,
    *,
    now: datetime,
) -> None:
    """Refuse an approval that the customer's cap or the budget forbids now."""
    amount = escalation.amount_cents or 0
    currency = escalation.currency
    rule = next(
        (book.rules[k] for k, rid in book.rule_ids.items() if rid == escalation.rule_id), None
    )
    if rule is not None and rule.cap is not None:
        grants = grants_to(
            session, installation.id, escalation.customer_id, escalation.requester_id, now=now
        )
        recent = granted_within(grants, now=now, days=rule.cap.days)
        used = sum(1 for g in recent if g.exception == escalation.exception_key)
        if used >= rule.cap.times:
            raise ActionRefused(
                ngettext(
                    "The customer was granted this %(used)d times in the last %(num)d day; "
                    "the rule allows %(cap)s.",
                    "The customer was granted this %(used)d times in the last %(num)d days; "
                    "the rule allows %(cap)s.",
                    rule.cap.days,
                    used=used,
                    cap=rule.cap.describe(),
                )
            )
    if escalation.budget_field and escalation.budget_value:
        segment = SegmentRef(escalation.budget_field, escalation.budget_value)
        status = next(
            (
                s
                for s in budget_statuses(session, installation.id, now=now)
                if s.budget.segment == segment
            ),
            None,
        )
        if status is None:
            raise ActionRefused(
                N_("No monthly budget is set for %(segment)s any more.", segment=segment.label)
            )
        if not status.allows(amount):
            raise ActionRefused(
                N_(
                    "%(amount)s would pass the %(segment)s budget: %(status)s.",
                    amount=exact_amount(amount, currency),
                    segment=segment.label,
                    status=status.sentence(currency),
                )
            )
