"""The recognition banner: who this customer is to the business, from their facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from plugin.domain.behaviour import Behaviour
from plugin.domain.helpdesk import ContactHistory, Person
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.rfm import RFM_MIN_BASE
from plugin.domain.segments import SegmentProfile
from plugin.domain.tiers import Tier, TierThresholds, value_tier
from plugin.domain.wording import N_

STALE_AFTER = timedelta(hours=24)

# Words that mark a name as a business's ("Bean There Café", "Brightside Dental Studio"), for
# customers whose orders do not already say so: a business is greeted by its whole name.
BUSINESS_NAME_WORDS = frozenset(
    {
        "bakery", "bar", "café", "cafe", "clinic", "co", "co.", "company", "corp", "corp.",
        "dental", "gmbh", "inc", "inc.", "llc", "llp", "ltd", "ltd.", "office", "restaurant",
        "salon", "shop", "studio", "store", "studios", "surgery",
    }
)  # fmt: skip


class MatchedBy(StrEnum):
    """How the requester's customer record was found: by the id the helpdesk gives, or not."""

    HELPDESK_ID = "helpdesk id"
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True)
class OrderStats:
    """A customer's purchases, as of `as_of`, from one source."""

    order_count: int
    total_spend_cents: int
    orders_12m: int
    spend_12m_cents: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    top_categories: tuple[str, ...]
    source: str
    as_of: datetime


class Personalization(StrEnum):
    """How far the banner goes for a customer, by value tier (the seeds' service levels)."""

    GENERIC = "generic"  # low: who they are and their history, nothing more
    CUSTOMIZED = "customized"  # medium: + what they buy, behaviour, segment and personas
    PERSONALIZED = "personalized"  # high: + a greeting to use and what they are to the business


PERSONALIZATION_BY_TIER = {
    Tier.LOW: Personalization.GENERIC,
    Tier.MEDIUM: Personalization.CUSTOMIZED,
    Tier.HIGH: Personalization.PERSONALIZED,
}


@dataclass(frozen=True)
class Guidance:
    """Handling guidance a supervisor attached to a segment or persona the customer is in."""

    applies_to: str  # e.g. "High value", "Small business", "Persona: Busy regular"
    text: str


@dataclass(frozen=True)
class Banner:
    """What the sidebar says about a requester; formatting is left to the template."""

    name: str
    first_name: str
    is_customer: bool
    tier: Tier
    customer_since: date | None
    orders: OrderStats | None
    # None when the helpdesk could not give the requester's ticket history in time.
    contact: ContactHistory | None
    data_as_of: datetime | None
    is_stale: bool
    # Facts the helpdesk holds on the requester (mapped fields and tags), by fact name.
    helpdesk_facts: tuple[tuple[str, object], ...] = ()
    profile: SegmentProfile | None = None
    personalization: Personalization = Personalization.GENERIC
    guidance: tuple[Guidance, ...] = ()
    # How the customer record was found; the store's name when it differs from the helpdesk's.
    matched_by: MatchedBy | None = None
    store_name: str | None = None
    # The tier a lapsed customer's lifetime reaches above their twelve-month one ("was High").
    former_tier: Tier | None = None
    # Buyers the installation's RFM cut points come from; 0 for the fixed bands.
    rfm_base_size: int = 0
    # A business is greeted by its name, a person by their first name (`greeting_name`).
    is_business: bool = False

    @property
    def greeting_name(self) -> str:
        return self.name if self.is_business else self.first_name

    @property
    def shows_rfm_chip(self) -> bool:
        """An RFM segment is a headline only when ranked against enough buyers to mean it."""
        return self.profile is not None and self.profile.rfm is not None and self.ranks_rfm

    @property
    def ranks_rfm(self) -> bool:
        return self.rfm_base_size >= RFM_MIN_BASE

    @property
    def rfm_min_base(self) -> int:
        """How many buyers RFM needs to rank against (the tooltip says so when there are fewer)."""
        return RFM_MIN_BASE

    @property
    def shows_matched_by(self) -> bool:
        """Say how the record was found when it was not by the helpdesk's own id."""
        return self.matched_by is not None and self.matched_by is not MatchedBy.HELPDESK_ID

    @property
    def shows_segments(self) -> bool:
        """Medium and high customers get their behaviour, RFM segment and personas."""
        return self.profile is not None and self.personalization is not Personalization.GENERIC

    @property
    def greets_personally(self) -> bool:
        return self.is_customer and self.personalization is Personalization.PERSONALIZED

    @property
    def has_orders(self) -> bool:
        return self.orders is not None and self.orders.order_count > 0


def build_banner(
    *,
    requester: Person,
    customer_name: str | None,
    customer_since: date | None,
    orders: OrderStats | None,
    contact: ContactHistory | None,
    thresholds: TierThresholds,
    helpdesk_facts: Mapping[str, object] | None = None,
    profile: SegmentProfile | None = None,
    guidance: Sequence[Guidance] = (),
    matched_by: MatchedBy | None = None,
    rfm_base_size: int = 0,
    now: datetime,
) -> Banner:
    """Combine stored facts and live helpdesk history into the banner for one requester.

    The helpdesk's name leads (it is who the agent is talking to); the store's name follows
    when it differs.
    """
    name = requester.name.strip() or customer_name or requester.name
    store_name = customer_name if customer_name and customer_name.strip() != name else None
    if profile is not None:
        tier = profile.tier
    elif orders is not None:
        tier = value_tier(orders.orders_12m, orders.spend_12m_cents, thresholds)
    else:
        tier = Tier.LOW
    since = customer_since
    if orders is not None and orders.first_order_at is not None:
        first_order = orders.first_order_at.date()
        since = min(since, first_order) if since else first_order
    data_as_of = orders.as_of if orders is not None else None
    return Banner(
        name=name,
        first_name=name.split()[0] if name.strip() else name,
        store_name=store_name,
        matched_by=matched_by if customer_name is not None else None,
        former_tier=_former_tier(tier, profile, orders, thresholds),
        rfm_base_size=rfm_base_size,
        is_business=is_business(name, profile),
        is_customer=customer_name is not None,
        tier=tier,
        customer_since=since,
        orders=orders,
        contact=contact,
        data_as_of=data_as_of,
        is_stale=is_stale(data_as_of, now),
        helpdesk_facts=tuple(sorted((helpdesk_facts or {}).items())),
        profile=profile,
        personalization=PERSONALIZATION_BY_TIER[tier],
        guidance=tuple(guidance),
    )


def is_stale(data_as_of: datetime | None, now: datetime) -> bool:
    """Are the order figures as of a moment too long ago to show without a warning?"""
    return data_as_of is not None and now - data_as_of > STALE_AFTER


def _former_tier(
    tier: Tier,
    profile: SegmentProfile | None,
    orders: OrderStats | None,
    thresholds: TierThresholds,
) -> Tier | None:
    """A lapsed customer's lifetime orders and spend against one year's bars, when higher.

    Seven years, 47 orders and $4,852 clear the high bars once over, whatever the last twelve
    months say; the badge should not read plain "Low value" for them.
    """
    if profile is None or profile.lifecycle is None or orders is None:
        return None
    if profile.lifecycle.stage is not LifecycleStage.LAPSED:
        return None
    lifetime = value_tier(orders.order_count, orders.total_spend_cents, thresholds)
    order = list(Tier)
    return lifetime if order.index(lifetime) > order.index(tier) else None


def is_business(name: str, profile: SegmentProfile | None) -> bool:
    """A business: it orders like one (the small-business behaviour), or its name says so."""
    if profile is not None and any(
        tag.behaviour is Behaviour.SMALL_BUSINESS for tag in profile.behaviours
    ):
        return True
    return any(word in BUSINESS_NAME_WORDS for word in name.casefold().split())


# Names an agent reads for the values segments are stored under, marked for the catalogs.
SEGMENT_LABELS = {
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalist": N_("Potential loyalist"),
    "new_customers": N_("New customers"),
    "promising": N_("Promising"),
    "need_attention": N_("Need attention"),
    "about_to_sleep": N_("About to sleep"),
    "at_risk": N_("At risk"),
    "cant_lose_them": N_("Can't lose them"),
    "hibernating": N_("Hibernating"),
    "lost": N_("Lost"),
    "seasonal": N_("Seasonal"),
    "small_business": N_("Small business"),
    "deal_seeker": N_("Deal seeker"),
    "new_customer": N_("New customer"),
    "new": N_("New"),
    "active": N_("Active"),
    "lapsed": N_("Lapsed"),
    "won_back": N_("Won back"),
}


def segment_label(value: str) -> str:
    """Say a stored segment value as an agent reads it: "at_risk" -> "At risk"."""
    return SEGMENT_LABELS.get(value, value.replace("_", " ").capitalize())


# Segment values as a sentence says them, mid-sentence and lowercase: "tier is high".
SEGMENT_VALUE_WORDS = {
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "champions": N_("champions"),
    "loyal": N_("loyal"),
    "potential_loyalist": N_("potential loyalist"),
    "new_customers": N_("new customers"),
    "promising": N_("promising"),
    "need_attention": N_("need attention"),
    "about_to_sleep": N_("about to sleep"),
    "at_risk": N_("at risk"),
    "cant_lose_them": N_("can't lose them"),
    "hibernating": N_("hibernating"),
    "lost": N_("lost"),
    "seasonal": N_("seasonal"),
    "small_business": N_("small business"),
    "deal_seeker": N_("deal seeker"),
    "new_customer": N_("new customer"),
    "new": N_("new"),
    "active": N_("active"),
    "lapsed": N_("lapsed"),
    "won_back": N_("won back"),
}


def segment_value_words(value: str) -> str:
    """A stored segment value mid-sentence: "at_risk" -> "at risk" (in the agent's language)."""
    return SEGMENT_VALUE_WORDS.get(value, value.replace("_", " "))


def guidance_for(
    profile: SegmentProfile,
    *,
    segment_guidance: Mapping[tuple[str, str], str],
    persona_guidance: Mapping[str, str],
) -> tuple[Guidance, ...]:
    """The guidance supervisors attached to what this customer is, most specific first.

    Personas come first (a supervisor defined them for exactly this kind of customer), then
    behaviour, lifecycle stage, RFM segment and value tier.
    """
    found: list[Guidance] = []
    for match in profile.personas:
        if text := persona_guidance.get(match.name):
            found.append(Guidance(applies_to=match.name, text=text))
    keys: list[tuple[str, str]] = [("behaviour", tag.behaviour.value) for tag in profile.behaviours]
    if profile.lifecycle is not None:
        keys.append(("lifecycle_stage", profile.lifecycle.stage.value))
    if profile.rfm is not None:
        keys.append(("rfm_segment", profile.rfm.segment.value))
    keys.append(("tier", profile.tier.value))
    for kind, value in keys:
        if text := segment_guidance.get((kind, value)):
            label = f"{segment_label(value)} value" if kind == "tier" else segment_label(value)
            found.append(Guidance(applies_to=label, text=text))
    return tuple(found)
