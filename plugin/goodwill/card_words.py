"""The suggestions card's own sentences, ready for the agent's language: what was done on the
ticket, where a change to it stands, and the conditions that made a suggestion.

Each is a `Words` (plugin.domain.wording): English as a str, worded by the view with `say`.
"""

from __future__ import annotations

from collections.abc import Iterable

from plugin.delivery.outbox import DeliveryStatus
from plugin.domain.personas import OPERATOR_WORDS, Condition, Operator, shown_value
from plugin.domain.recognition import SEGMENT_VALUE_WORDS, segment_value_words
from plugin.domain.wording import N_, Words, listed
from plugin.goodwill.action_log import ActionKind, handling_of
from plugin.goodwill.money import exact_amount
from plugin.goodwill.suggestions import SuggestionsCard
from plugin.models import Action, Delivery

# What the card says an action on this ticket was, before its amount and name.
DONE_WORDS = {
    ActionKind.APPLIED: N_("Applied"),
    ActionKind.DISMISSED: N_("Dismissed"),
    ActionKind.ESCALATED: N_("Waiting for approval"),
    ActionKind.APPROVED: N_("Approved"),
    ActionKind.REFUSED: N_("Refused"),
}
UNDONE_WORDS = {
    ActionKind.APPLIED: N_("Undone (applied)"),
    ActionKind.DISMISSED: N_("Undone (dismissed)"),
    ActionKind.ESCALATED: N_("Undone (waiting for approval)"),
    ActionKind.APPROVED: N_("Undone (approved)"),
    ActionKind.REFUSED: N_("Undone (refused)"),
}

# The fields a rule tests, as the card names them in its "why" (their stored names, spaced).
FIELD_WORDS = {
    "tier": N_("tier"),
    "rfm_segment": N_("rfm segment"),
    "recency_score": N_("recency score"),
    "frequency_score": N_("frequency score"),
    "monetary_score": N_("monetary score"),
    "behaviour_tags": N_("behaviour tags"),
    "lifecycle_stage": N_("lifecycle stage"),
    "order_count": N_("order count"),
    "total_spend_cents": N_("total spend cents"),
    "orders_12m": N_("orders 12m"),
    "spend_12m_cents": N_("spend 12m cents"),
    "days_since_last_order": N_("days since last order"),
    "discount_share": N_("discount share"),
    "top_categories": N_("top categories"),
    "personas": N_("personas"),
    "ticket_type": N_("ticket type"),
    "ticket_priority": N_("ticket priority"),
    "ticket_channel": N_("ticket channel"),
    "ticket_tags": N_("ticket tags"),
    "ticket_subject": N_("ticket subject"),
    "order_value_cents": N_("order value cents"),
    "granted_count_30d": N_("granted count 30d"),
    "granted_cents_30d": N_("granted cents 30d"),
    "granted_count_90d": N_("granted count 90d"),
    "granted_cents_90d": N_("granted cents 90d"),
    "granted_count_365d": N_("granted count 365d"),
    "granted_cents_365d": N_("granted cents 365d"),
}


def done_line(action: Action, card: SuggestionsCard) -> str:
    """One action on this ticket in a few words: "Applied: $18 Expedited shipping upgrade"; for
    ticket handling, how it stands: "Raise priority to urgent: on its way to the ticket".
    """
    handling = handling_of(action)
    if handling is not None:
        if action.undone_at is not None:
            return N_("Undone: %(action)s", action=handling.describe())
        return N_(
            "%(action)s: %(state)s",
            action=handling.describe(),
            state=delivery_words(card.deliveries.get(action.id)),
        )
    entry = card.catalog.get(action.exception_key)
    name = entry.name if entry else action.exception_key
    kind = ActionKind(action.kind)
    said = UNDONE_WORDS if action.undone_at is not None else DONE_WORDS
    words = said.get(kind) or action.kind.capitalize()
    if action.amount_cents is not None and action.kind != ActionKind.DISMISSED:
        shown = exact_amount(action.amount_cents, action.currency)
        return N_("%(what)s: %(amount)s %(name)s", what=words, amount=shown, name=name)
    return N_("%(what)s: %(name)s", what=words, name=name)


def delivery_words(delivery: Delivery | None) -> str:
    """Where a change to the ticket stands, as the agent needs to know it."""
    if delivery is None or delivery.status in (
        DeliveryStatus.PENDING.value,
        DeliveryStatus.IN_FLIGHT.value,
    ):
        return N_("on its way to the ticket")
    if delivery.status == DeliveryStatus.DELIVERED.value:
        return N_("done on the ticket")
    # The helpdesk's own error stays as it said it.
    return N_("not applied (%(why)s)", why=delivery.last_error or N_("the helpdesk refused it"))


# The fields whose values are segment values, said in words: "tier is high", "lifecycle stage is
# one of at risk, lapsed". Tags, words and anything else are shown as they are.
SEGMENT_FIELDS = frozenset({"tier", "rfm_segment", "behaviour_tags", "lifecycle_stage"})


def _value_words(condition: Condition) -> str:
    """A condition's value in words: segment values in the agent's language, the rest as is."""
    items = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    if condition.field not in SEGMENT_FIELDS or not all(
        isinstance(item, str) and item in SEGMENT_VALUE_WORDS for item in items
    ):
        return shown_value(condition.value).replace("_", " ")
    return listed([segment_value_words(str(item)) for item in items])


def condition_words(conditions: Iterable[Condition], subject: str = "") -> tuple[Words, ...]:
    """The conditions that held, as agents read them: "tier is high", "ticket tags include vip".

    Of a list of words the subject may have, only those it has are said. Values (tags, words,
    segment names as stored) are shown as they are.
    """
    words = []
    for condition in conditions:
        if condition.operator is Operator.CONTAINS_ANY_WORD and isinstance(condition.value, tuple):
            found = tuple(
                word
                for word in condition.value
                if Condition(condition.field, Operator.CONTAINS_WORD, word).holds(
                    {condition.field: subject}
                )
            )
            if len(found) == 1:
                condition = Condition(condition.field, Operator.CONTAINS_WORD, found[0])
            elif found:
                condition = Condition(condition.field, condition.operator, found)
        words.append(
            N_(
                "%(field)s %(operator)s %(value)s",
                field=FIELD_WORDS.get(condition.field) or condition.field.replace("_", " "),
                operator=OPERATOR_WORDS[condition.operator],
                value=_value_words(condition),
            )
        )
    return tuple(words)
