"""Account reviews: the checklists agents work through for the customers who call for one.

A supervisor writes a checklist template ("High-value account review") for an audience: the
value tiers, RFM segments, lifecycle stages and personas it is for. A customer is in the
audience when any one of those matches (a high-value customer, or a champion, or ...): a
supervisor lists who needs the review, not a combination every one of them must meet. Each
template has ordered items, each required or optional, with help text saying what to look at.

When several enabled templates fit a customer, the one with the lowest priority number wins
(1 before 2; as personas rank), then the name, so the choice never depends on storage order.
A review is complete when every required item is checked; optional items never hold it up,
and a template with no required item is complete once any item is checked (an empty review
is not a review).

Validation (`parse_template`) reports every problem against the field it is in (`name`,
`audience`, `items-2-label`), so the console's form can show each one beside its input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from plugin.domain.field_errors import FieldErrors
from plugin.domain.lifecycle import LifecycleStage
from plugin.domain.recognition import segment_value_words
from plugin.domain.rfm import RfmSegment
from plugin.domain.tiers import Tier
from plugin.domain.wording import N_, Words, listed, ngettext

NAME_MAX = 100
DESCRIPTION_MAX = 500
LABEL_MAX = 200
HELP_MAX = 500
MAX_ITEMS = 30
PRIORITY_MIN, PRIORITY_MAX = 0, 999


class AudienceKind(StrEnum):
    """What a template's audience can name: the parts of a customer's segment profile."""

    TIER = "tier"
    RFM_SEGMENT = "rfm_segment"
    LIFECYCLE_STAGE = "lifecycle_stage"
    PERSONA = "persona"


# The values each kind allows; personas are the installation's own, given when parsing.
FIXED_VALUES: dict[AudienceKind, tuple[str, ...]] = {
    AudienceKind.TIER: tuple(Tier),
    AudienceKind.RFM_SEGMENT: tuple(RfmSegment),
    AudienceKind.LIFECYCLE_STAGE: tuple(LifecycleStage),
}


class InvalidTemplate(FieldErrors):
    """A template that does not validate: a message per field, keyed by the form's names."""


@dataclass(frozen=True)
class Audience:
    """Who a template is for: a customer matching any listed value of any kind."""

    tiers: frozenset[str] = frozenset()
    rfm_segments: frozenset[str] = frozenset()
    lifecycle_stages: frozenset[str] = frozenset()
    personas: frozenset[str] = frozenset()

    def of(self, kind: AudienceKind) -> frozenset[str]:
        return {
            AudienceKind.TIER: self.tiers,
            AudienceKind.RFM_SEGMENT: self.rfm_segments,
            AudienceKind.LIFECYCLE_STAGE: self.lifecycle_stages,
            AudienceKind.PERSONA: self.personas,
        }[kind]

    def is_empty(self) -> bool:
        return not (self.tiers or self.rfm_segments or self.lifecycle_stages or self.personas)

    def includes(self, customer: CustomerSegments) -> bool:
        """Whether the customer is in the audience: one matching value of any kind is enough."""
        return (
            customer.tier in self.tiers
            or (customer.rfm_segment is not None and customer.rfm_segment in self.rfm_segments)
            or (
                customer.lifecycle_stage is not None
                and customer.lifecycle_stage in self.lifecycle_stages
            )
            or bool(self.personas.intersection(customer.personas))
        )

    def as_json(self) -> dict[str, list[str]]:
        """The stored shape: a sorted list per kind, kinds without values left out."""
        return {kind.value: sorted(self.of(kind)) for kind in AudienceKind if self.of(kind)}

    def describe(self) -> str:
        """For people: "tier high or RFM segment champions, loyal or persona Busy regulars"."""
        parts = [
            _audience_part(kind, listed([_value_words(kind, v) for v in sorted(self.of(kind))]))
            for kind in AudienceKind
            if self.of(kind)
        ]
        if not parts:
            return N_("nobody")
        said = parts[-1]
        for part in reversed(parts[:-1]):
            said = N_("%(one)s or %(other)s", one=part, other=said)
        return said


def _audience_part(kind: AudienceKind, values: str) -> Words:
    match kind:
        case AudienceKind.TIER:
            return N_("tier %(values)s", values=values)
        case AudienceKind.RFM_SEGMENT:
            return N_("RFM segment %(values)s", values=values)
        case AudienceKind.LIFECYCLE_STAGE:
            return N_("lifecycle %(values)s", values=values)
        case AudienceKind.PERSONA:
            return N_("persona %(values)s", values=values)


def _value_words(kind: AudienceKind, value: str) -> str:
    """A persona by its name; a segment value as agents read it, mid-sentence: "can't lose them"."""
    return value if kind is AudienceKind.PERSONA else segment_value_words(value)


@dataclass(frozen=True)
class CustomerSegments:
    """The parts of a customer's segment profile an audience can name."""

    tier: str
    rfm_segment: str | None = None
    lifecycle_stage: str | None = None
    personas: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChecklistItem:
    """One thing to check; `item_id` is the stored item's id (None for one not saved yet)."""

    label: str
    required: bool = True
    help: str = ""
    item_id: int | None = None


@dataclass(frozen=True)
class ReviewTemplate:
    """A checklist for an audience; `items` in the order agents work through them."""

    name: str
    audience: Audience
    items: tuple[ChecklistItem, ...]
    description: str = ""
    priority: int = 0
    enabled: bool = True
    template_id: int | None = None


@dataclass(frozen=True)
class Progress:
    """How far a review is: required and optional items checked, and whether it is complete."""

    required_done: int
    required_total: int
    done: int
    total: int

    @property
    def complete(self) -> bool:
        if self.required_total:
            return self.required_done == self.required_total
        return self.done > 0

    def describe(self) -> str:
        """ "3 of 4 required items checked" or "Complete: 5 of 6 items checked"."""
        if self.complete:
            return ngettext(
                "Complete: %(done)d of %(num)d item checked",
                "Complete: %(done)d of %(num)d items checked",
                self.total,
                done=self.done,
            )
        if self.required_total:
            return ngettext(
                "%(done)d of %(num)d required item checked",
                "%(done)d of %(num)d required items checked",
                self.required_total,
                done=self.required_done,
            )
        return ngettext(
            "%(done)d of %(num)d item checked",
            "%(done)d of %(num)d items checked",
            self.total,
            done=self.done,
        )


@dataclass(frozen=True)
class ItemRow:
    """One item row as a form sends it: texts, not yet checked."""

    label: str = ""
    help: str = ""
    required: bool = True
    position: str = ""
    item_id: int | None = None
    remove: bool = False

    def is_blank(self) -> bool:
        return not self.label.strip() and not self.help.strip() and self.item_id is None


@dataclass(frozen=True)
class TemplateForm:
    """A template as the console's form sends it: texts and choices, not yet checked."""

    name: str = ""
    description: str = ""
    priority: str = "0"
    enabled: bool = True
    audience: Mapping[str, Sequence[str]] = field(default_factory=dict)
    items: tuple[ItemRow, ...] = ()


def parse_template(
    form: TemplateForm, *, personas: Collection[str], template_id: int | None = None
) -> ReviewTemplate:
    """Check a template form; raise InvalidTemplate with a message per wrong field.

    Items are put in the order of their positions (a blank position keeps the row's place
    after the numbered ones); rows marked for removal and blank rows are left out. Persona
    names must be among `personas`, the installation's own.
    """
    errors: dict[str, str] = {}
    name = " ".join(form.name.split())
    if not name:
        errors["name"] = "enter a name agents will recognise"
    elif len(name) > NAME_MAX:
        errors["name"] = f"at most {NAME_MAX} characters"
    description = form.description.strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"at most {DESCRIPTION_MAX} characters"
    priority = _priority(form.priority, errors)
    audience = _audience(form.audience, personas, errors)
    items = _items(form.items, errors)
    if errors:
        raise InvalidTemplate(errors)
    return ReviewTemplate(
        name=name,
        audience=audience,
        items=items,
        description=description,
        priority=priority,
        enabled=form.enabled,
        template_id=template_id,
    )


def _priority(raw: str, errors: dict[str, str]) -> int:
    text = raw.strip() or "0"
    if not text.isdigit() or not PRIORITY_MIN <= int(text) <= PRIORITY_MAX:
        errors["priority"] = f"expected a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}"
        return 0
    return int(text)


def _audience(
    raw: Mapping[str, Sequence[str]], personas: Collection[str], errors: dict[str, str]
) -> Audience:
    chosen: dict[AudienceKind, frozenset[str]] = {}
    for kind in AudienceKind:
        values = frozenset(v.strip() for v in raw.get(kind.value, ()) if v.strip())
        allowed = personas if kind is AudienceKind.PERSONA else FIXED_VALUES[kind]
        unknown = sorted(values.difference(allowed))
        if unknown:
            errors[f"audience-{kind.value}"] = f"not a {kind.value.replace('_', ' ')}: " + (
                ", ".join(unknown)
            )
        chosen[kind] = values.intersection(allowed)
    for key in raw:
        if key not in tuple(AudienceKind):
            errors["audience"] = f"unknown kind of segment: {key}"
    audience = Audience(
        tiers=chosen[AudienceKind.TIER],
        rfm_segments=chosen[AudienceKind.RFM_SEGMENT],
        lifecycle_stages=chosen[AudienceKind.LIFECYCLE_STAGE],
        personas=chosen[AudienceKind.PERSONA],
    )
    if audience.is_empty() and not any(k.startswith("audience") for k in errors):
        errors["audience"] = "choose at least one tier, segment, lifecycle stage or persona"
    return audience


def _items(rows: Sequence[ItemRow], errors: dict[str, str]) -> tuple[ChecklistItem, ...]:
    placed: list[tuple[int, int, ChecklistItem]] = []
    labels: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row.remove or row.is_blank():
            continue
        label = " ".join(row.label.split())
        help_text = row.help.strip()
        if not label:
            errors[f"items-{index}-label"] = "enter what the agent checks"
        elif len(label) > LABEL_MAX:
            errors[f"items-{index}-label"] = f"at most {LABEL_MAX} characters"
        elif label.casefold() in labels:
            errors[f"items-{index}-label"] = f"the same as item {labels[label.casefold()] + 1}"
        else:
            labels[label.casefold()] = index
        if len(help_text) > HELP_MAX:
            errors[f"items-{index}-help"] = f"at most {HELP_MAX} characters"
        position = row.position.strip()
        if position and (not position.isdigit() or not 1 <= int(position) <= MAX_ITEMS):
            errors[f"items-{index}-position"] = f"expected a whole number from 1 to {MAX_ITEMS}"
            position = ""
        order = int(position) if position else MAX_ITEMS + 1
        item = ChecklistItem(
            label=label, required=row.required, help=help_text, item_id=row.item_id
        )
        placed.append((order, index, item))
    if not placed and "items" not in errors:
        errors["items"] = "add at least one item to check"
    elif len(placed) > MAX_ITEMS:
        errors["items"] = f"at most {MAX_ITEMS} items"
    return tuple(item for _, _, item in sorted(placed, key=lambda p: (p[0], p[1])))


def template_for(
    templates: Iterable[ReviewTemplate], customer: CustomerSegments
) -> ReviewTemplate | None:
    """The enabled template whose audience includes the customer; lowest priority, then name."""
    fitting = [t for t in templates if t.enabled and t.audience.includes(customer)]
    return min(fitting, key=lambda t: (t.priority, t.name.casefold(), t.name), default=None)


def progress(items: Iterable[ChecklistItem], checked: Collection[int]) -> Progress:
    """Count the checked items (by stored id) among a template's items."""
    required_done = required_total = done = total = 0
    for item in items:
        total += 1
        is_checked = item.item_id is not None and item.item_id in checked
        done += is_checked
        if item.required:
            required_total += 1
            required_done += is_checked
    return Progress(required_done, required_total, done, total)
