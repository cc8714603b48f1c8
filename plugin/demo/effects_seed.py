"""The demo's effects history: two rules with holdouts, one whose gesture pays and one whose
gesture changes nothing, so the effects report shows a real difference and a null one; and a
rule without a holdout, whose applied and dismissed tickets the report compares (not causal).

The tickets are 190 to 360 days old, so every outcome window has passed and `flask effects
compute` leaves them as planted (final). The rules suggest on tags no live demo ticket has,
so the demo's cards are unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.delivery.outbox import DeliveryStatus
from plugin.domain.effects import is_held_out
from plugin.goodwill.action_log import ActionKind
from plugin.goodwill.holdouts import customer_key
from plugin.goodwill.rulebook import Author, create_rule
from plugin.models import Action, Delivery, Installation, Rule, RuleExposure

AUTHOR = Author(id=None, name="Regulars demo")
HISTORY_KEY = "demo-effects-"
TIERS = ("high", "medium", "medium", "low", "low", "low")


@dataclass(frozen=True)
class PlantedRule:
    """A demo rule and the outcomes its shown and held-out tickets were drawn from."""

    key: str
    definition: dict[str, object]
    tickets: int
    # (shown, held out) probabilities; spend is drawn for those who ordered.
    ordered_90d: tuple[float, float]
    repeat_contact: tuple[float, float]
    satisfied: tuple[float, float]
    cost_cents: int

    @property
    def holdout_percent(self) -> int:
        share = self.definition["holdout_percent"]
        assert isinstance(share, int)
        return share

    @property
    def exception_key(self) -> str:
        suggest = self.definition["suggest"]
        assert isinstance(suggest, list)
        return str(suggest[0]["exception"])


PLANTED = (
    PlantedRule(
        key="repeat_late_credit",
        definition={
            "name": "Late again: a goodwill credit",
            "priority": 12,
            "conditions": {
                "all": [{"field": "ticket_tags", "operator": "contains", "value": "late_again"}]
            },
            "suggest": [{"exception": "goodwill_credit"}],
            "cap": {"times": 1, "days": 90},
            "holdout_percent": 20,
        },
        tickets=1200,
        ordered_90d=(0.46, 0.31),
        repeat_contact=(0.12, 0.21),
        satisfied=(0.86, 0.78),
        cost_cents=900,
    ),
    PlantedRule(
        key="first_order_sample",
        definition={
            "name": "First order trouble: a free sample",
            "priority": 45,
            "conditions": {
                "all": [
                    {"field": "ticket_tags", "operator": "contains", "value": "first_order_issue"}
                ]
            },
            "suggest": [{"exception": "free_sample"}],
            "cap": {"times": 1, "days": 365},
            "holdout_percent": 25,
        },
        tickets=800,
        ordered_90d=(0.24, 0.24),
        repeat_contact=(0.18, 0.18),
        satisfied=(0.80, 0.80),
        cost_cents=300,
    ),
)


def seed_effects(session: Session, installation: Installation, *, now: datetime) -> None:
    """Add the two holdout rules and their planted history (after `seed_exceptions`)."""
    session.execute(sa.delete(RuleExposure).where(RuleExposure.installation_id == installation.id))
    rng = random.Random(16)
    for planted in PLANTED:
        version = create_rule(
            session,
            installation,
            key=planted.key,
            definition=planted.definition,
            author=AUTHOR,
            note="The demo's holdout, with its history",
            now=now,
        )
        for number in range(planted.tickets):
            _plant(session, installation, planted, version.rule_id, number, rng, now)
    _plant_without_holdout(session, installation, rng, now)
    session.flush()
    # History: their notes went out long ago (the tickets are not in the demo desk).
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.installation_id == installation.id,
            Delivery.action_id.in_(
                sa.select(Action.id).where(
                    Action.installation_id == installation.id,
                    Action.idempotency_key.like(f"{HISTORY_KEY}%"),
                )
            ),
        )
        .values(status=DeliveryStatus.DELIVERED.value, attempts=1, delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


# The demo's medium-tier waiver has no holdout: agents applied it on some tickets and dismissed
# it on others, and those who got it ordered again a little more often (who chose is unknown).
WITHOUT_HOLDOUT = "medium_late_delivery"
WITHOUT_HOLDOUT_TICKETS = 400


def _plant_without_holdout(
    session: Session, installation: Installation, rng: random.Random, now: datetime
) -> None:
    rule_id = session.scalar(
        sa.select(Rule.id).where(
            Rule.installation_id == installation.id, Rule.key == WITHOUT_HOLDOUT
        )
    )
    if rule_id is None:
        return
    for number in range(WITHOUT_HOLDOUT_TICKETS):
        applied = rng.random() < 0.6
        seen_at = now - timedelta(days=rng.randint(190, 360), minutes=rng.randint(0, 1439))
        ticket = f"H{rule_id}-{number}"
        requester = f"history-{WITHOUT_HOLDOUT}-{number}"
        ordered_90 = rng.random() < (0.40 if applied else 0.33)
        session.add(
            RuleExposure(
                installation_id=installation.id,
                ticket_id=ticket,
                rule_id=rule_id,
                rule_version=1,
                requester_id=requester,
                customer_id=None,
                segment="medium",
                held_out=False,
                exception_key="waive_shipping_fee",
                cost_cents=900,
                seen_at=seen_at,
                repeat_contact_7d=rng.random() < 0.17,
                ordered_30d=ordered_90 and rng.random() < 0.55,
                ordered_90d=ordered_90,
                spend_90d_cents=round(rng.lognormvariate(8.2, 0.5)) if ordered_90 else 0,
                lapsed_180d=not ordered_90 and rng.random() < 0.7,
                satisfied=None,
                outcomes_final=True,
                outcomes_at=seen_at + timedelta(days=181),
            )
        )
        session.add(
            Action(
                installation_id=installation.id,
                ticket_id=ticket,
                requester_id=requester,
                customer_id=None,
                agent_id="demo-history",
                kind=(ActionKind.APPLIED if applied else ActionKind.DISMISSED).value,
                exception_key="waive_shipping_fee",
                amount_cents=900 if applied else None,
                currency=installation.currency,
                reason_code=None if applied else "customer_declined",
                text="",
                rule_id=rule_id,
                rule_version=1,
                idempotency_key=f"{HISTORY_KEY}{rule_id}-{number}",
                created_at=seen_at + timedelta(minutes=3),
            )
        )


def _plant(
    session: Session,
    installation: Installation,
    planted: PlantedRule,
    rule_id: int,
    number: int,
    rng: random.Random,
    now: datetime,
) -> None:
    requester = f"history-{planted.key}-{number}"
    held = is_held_out(
        installation.id, planted.key, customer_key(None, requester), planted.holdout_percent
    )
    group = 1 if held else 0
    seen_at = now - timedelta(days=rng.randint(190, 360), minutes=rng.randint(0, 1439))
    ticket = f"H{rule_id}-{number}"
    ordered_90 = rng.random() < planted.ordered_90d[group]
    ordered_30 = ordered_90 and rng.random() < 0.55
    spend = round(rng.lognormvariate(8.4, 0.5)) if ordered_90 else 0
    session.add(
        RuleExposure(
            installation_id=installation.id,
            ticket_id=ticket,
            rule_id=rule_id,
            rule_version=1,
            requester_id=requester,
            customer_id=None,
            segment=rng.choice(TIERS),
            held_out=held,
            exception_key=planted.exception_key,
            cost_cents=planted.cost_cents,
            seen_at=seen_at,
            repeat_contact_7d=rng.random() < planted.repeat_contact[group],
            ordered_30d=ordered_30,
            ordered_90d=ordered_90,
            spend_90d_cents=spend,
            lapsed_180d=not ordered_90 and rng.random() < 0.7,
            satisfied=(rng.random() < planted.satisfied[group]) if rng.random() < 0.6 else None,
            outcomes_final=True,
            outcomes_at=seen_at + timedelta(days=181),
        )
    )
    # Agents applied most of the suggestions they were shown: what the rule cost.
    if not held and rng.random() < 0.7:
        session.add(
            Action(
                installation_id=installation.id,
                ticket_id=ticket,
                requester_id=requester,
                customer_id=None,
                agent_id="demo-history",
                kind=ActionKind.APPLIED.value,
                exception_key=planted.exception_key,
                amount_cents=planted.cost_cents,
                currency=installation.currency,
                text="",
                rule_id=rule_id,
                rule_version=1,
                idempotency_key=f"{HISTORY_KEY}{rule_id}-{number}",
                created_at=seen_at + timedelta(minutes=3),
            )
        )
