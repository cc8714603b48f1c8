"""Rules: which exceptions and ticket actions to suggest for a ticket, as supervisors write them.

A rule is a condition set in the personas' language over `RULE_FIELDS` (the customer's segment,
personas and facts, the ticket, and the goodwill granted before) that suggests exceptions from
the catalog, each with a priority, and ticket actions; with a per-customer cap, an approval
threshold and the segment budget its gestures are charged to. Evaluating them for a ticket is
`plugin/domain/rule_evaluation.py`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from plugin.domain.exceptions import (
    NAME_MAX_LENGTH,
    DefinitionReader,
    SegmentRef,
    TextShape,
    read_segment_ref,
)
from plugin.domain.helpdesk import Ticket
from plugin.domain.personas import (
    ConditionSet,
    FieldKind,
    FieldSpec,
    InvalidConditions,
    parse_conditions,
)
from plugin.domain.segments import SEGMENT_FIELDS
from plugin.domain.wording import N_, ngettext

# Zendesk's priorities, lowest first; other helpdesks' adapters map theirs onto these.
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
# "Granted in the last N days" is asked through one field per window.
HISTORY_WINDOWS_DAYS = (30, 90, 365)
MAX_PRIORITY = 9999
MAX_CAP_TIMES = 100
MAX_CAP_DAYS = 3650
# A holdout keeps a rule's suggestion from at most half the eligible customers.
MAX_HOLDOUT_PERCENT = 50
# Helpdesk tags are single words: Zendesk turns spaces into separate tags.
TAG = TextShape(
    re.compile(r"[a-z0-9][a-z0-9_\-:/.]{0,79}"),
    "one word of lowercase letters, digits and _ - : / .",
)

TICKET_FIELDS: dict[str, FieldSpec] = {
    "ticket_type": FieldSpec(FieldKind.CHOICE),
    "ticket_priority": FieldSpec(FieldKind.CHOICE, TICKET_PRIORITIES),
    "ticket_channel": FieldSpec(FieldKind.CHOICE),
    "ticket_tags": FieldSpec(FieldKind.TAGS),
    "ticket_subject": FieldSpec(FieldKind.TEXT),
    # The value of the order the ticket is about, which percent costs are a share of.
    "order_value_cents": FieldSpec(FieldKind.NUMBER),
}
HISTORY_FIELDS: dict[str, FieldSpec] = {
    f"granted_{measure}_{days}d": FieldSpec(FieldKind.NUMBER)
    for days in HISTORY_WINDOWS_DAYS
    for measure in ("count", "cents")
}
PERSONAS_FIELD = "personas"
# Facts an installation maps from its helpdesk or pushes are named under this prefix, so that
# no fact name can take the place of a built-in field.
FACT_PREFIX = "fact."

# The fields every installation's rules can test; `rule_fields` adds its personas and facts.
RULE_FIELDS: dict[str, FieldSpec] = {
    **SEGMENT_FIELDS,
    PERSONAS_FIELD: FieldSpec(FieldKind.TAGS),
    **TICKET_FIELDS,
    **HISTORY_FIELDS,
}


def rule_fields(
    *, personas: Iterable[str] = (), facts: Mapping[str, FieldKind] | None = None
) -> dict[str, FieldSpec]:
    """The fields an installation's rules can test: its persona names and its declared facts.

    Without personas there is no personas field, so a rule cannot name one that does not exist.
    """
    fields = dict(RULE_FIELDS)
    names = tuple(sorted(personas))
    if names:
        fields[PERSONAS_FIELD] = FieldSpec(FieldKind.TAGS, names)
    else:
        del fields[PERSONAS_FIELD]
    for name, kind in (facts or {}).items():
        fields[FACT_PREFIX + name] = FieldSpec(kind)
    return fields


class InvalidRule(InvalidConditions):
    """A rule that does not validate, with every problem at its path (`cap.days`)."""


class ActionKind(StrEnum):
    RAISE_PRIORITY = "raise_priority"
    ADD_TAG = "add_tag"
    ROUTE_TO_GROUP = "route_to_group"


@dataclass(frozen=True)
class TicketAction:
    """How to handle the ticket: raise its priority, tag it, or route it to a group."""

    kind: ActionKind
    value: str

    def describe(self) -> str:
        """Say the action: "Raise priority to urgent", "Add tag vip", "Route to Senior care"."""
        match self.kind:
            case ActionKind.RAISE_PRIORITY:
                return N_("Raise priority to %(priority)s", priority=self.value)
            case ActionKind.ADD_TAG:
                return N_("Add tag %(tag)s", tag=self.value)
            case _:
                return N_("Route to %(group)s", group=self.value)

    def is_done(self, ticket: Ticket) -> bool:
        """Whether the ticket already is so: as urgent or more, or tagged so."""
        match self.kind:
            case ActionKind.RAISE_PRIORITY:
                return priority_rank(ticket.priority) >= priority_rank(self.value)
            case ActionKind.ADD_TAG:
                return self.value in ticket.tags
            case _:
                # The ticket's group is not known here; routing is always worth offering.
                return False


def priority_rank(priority: str | None) -> int:
    """A priority's place in TICKET_PRIORITIES; none (or one we do not know) is lowest."""
    return TICKET_PRIORITIES.index(priority) if priority in TICKET_PRIORITIES else -1


def raised_priority(current: str | None, wanted: str) -> str | None:
    """The priority to give a ticket at `current` to raise it to `wanted`; None when it is as
    high already, since raising a priority never lowers it.
    """
    return wanted if priority_rank(current) < priority_rank(wanted) else None


@dataclass(frozen=True)
class Cap:
    """At most `times` grants of an exception to one customer in any `days` days."""

    times: int
    days: int

    def describe(self) -> str:
        """Say the cap: "once per 90 days", "3 times per 365 days"."""
        return ngettext(
            "%(times)s per %(num)d day",
            "%(times)s per %(num)d days",
            self.days,
            times=times_phrase(self.times),
        )


def times_phrase(count: int) -> str:
    """ "once", "3 times"."""
    return ngettext("once", "%(num)d times", count)


@dataclass(frozen=True)
class SuggestedException:
    """An exception a rule suggests; a lower `priority` ranks first among the rule's."""

    exception: str
    priority: int = 0


@dataclass(frozen=True)
class RuleRef:
    """Which rule, in which version, made a suggestion."""

    id: str
    version: int
    name: str


@dataclass(frozen=True)
class Rule:
    """When to suggest which exceptions and ticket actions, and within what limits.

    A lower `priority` ranks first. The gestures are charged to `budget`, a segment's monthly
    budget; a `cap`, approval threshold or budget of None sets no limit.
    """

    id: str
    version: int
    name: str
    conditions: ConditionSet
    suggest: tuple[SuggestedException, ...] = ()
    actions: tuple[TicketAction, ...] = ()
    priority: int = 0
    enabled: bool = True
    cap: Cap | None = None
    approval_threshold_cents: int | None = None
    budget: SegmentRef | None = None
    # The share of eligible customers (0-50 %) the suggestion is held back from, to measure
    # what it changes (`plugin.domain.effects`).
    holdout_percent: int = 0

    @cached_property
    def ref(self) -> RuleRef:
        return RuleRef(self.id, self.version, self.name)


def parse_rule(
    raw: object,
    *,
    rule_id: str,
    version: int,
    fields: Mapping[str, FieldSpec],
    exceptions: Collection[str],
) -> Rule:
    """Validate a rule's definition against the installation's fields and exception keys.

    `raw` is `{"name", "conditions", "suggest": [{"exception", "priority"}], "actions":
    [{"kind", "value"}], "priority", "enabled", "cap": {"times", "days"},
    "approval_threshold_cents", "budget": {"field", "value"}, "holdout_percent"}`; the first
    two are required.
    Raises InvalidRule listing every problem, each at its path (`conditions.all[2].value`).
    """
    reader = DefinitionReader()
    definition = reader.fields(
        raw,
        "",
        required=("name", "conditions"),
        optional=(
            "enabled",
            "priority",
            "suggest",
            "actions",
            "cap",
            "approval_threshold_cents",
            "budget",
            "holdout_percent",
        ),
    )
    if definition is None:
        raise InvalidRule(reader.errors)
    name = reader.text(definition.get("name"), "name", max_length=NAME_MAX_LENGTH)
    enabled = definition.get("enabled", True)
    if not isinstance(enabled, bool):
        reader.error("enabled", "expected true or false")
    priority = reader.integer(
        definition.get("priority", 0), "priority", minimum=0, maximum=MAX_PRIORITY
    )
    conditions = ConditionSet()
    if "conditions" in definition:
        try:
            conditions = parse_conditions(definition["conditions"], fields)
        except InvalidConditions as error:
            reader.absorb(error, "conditions")
    suggest = _suggestions(definition.get("suggest", []), exceptions, reader)
    actions = _actions(definition.get("actions", []), reader)
    if not suggest and not actions and not reader.errors:
        reader.error("suggest", "suggest at least one exception or ticket action")
    cap = None
    if definition.get("cap") is not None:
        cap = _cap(definition["cap"], reader)
    threshold = definition.get("approval_threshold_cents")
    if threshold is not None:
        threshold = reader.cents(threshold, "approval_threshold_cents")
    budget = None
    if definition.get("budget") is not None:
        budget = read_segment_ref(definition["budget"], "budget", reader)
    holdout = reader.integer(
        definition.get("holdout_percent", 0),
        "holdout_percent",
        minimum=0,
        maximum=MAX_HOLDOUT_PERCENT,
    )
    if reader.errors:
        raise InvalidRule(reader.errors)
    assert name is not None and priority is not None and isinstance(enabled, bool)
    return Rule(
        id=rule_id,
        version=version,
        name=name,
        conditions=conditions,
        suggest=suggest,
        actions=actions,
        priority=priority,
        enabled=enabled,
        cap=cap,
        approval_threshold_cents=threshold,
        budget=budget,
        holdout_percent=holdout or 0,
    )


def _suggestions(
    raw: object, exceptions: Collection[str], reader: DefinitionReader
) -> tuple[SuggestedException, ...]:
    """Read the suggested exceptions: each a catalog key, once, with an optional priority."""
    found: list[SuggestedException] = []
    for i, item in enumerate(reader.items(raw, "suggest")):
        path = f"suggest[{i}]"
        fields = reader.fields(item, path, required=("exception",), optional=("priority",))
        if fields is None:
            continue
        key = fields.get("exception")
        priority = reader.integer(
            fields.get("priority", 0), f"{path}.priority", minimum=0, maximum=MAX_PRIORITY
        )
        if "exception" not in fields:
            continue
        if not isinstance(key, str) or key not in exceptions:
            reader.error(f"{path}.exception", f"no exception {key!r} in the catalog")
        elif any(s.exception == key for s in found):
            reader.error(f"{path}.exception", f"{key} is suggested twice")
        elif priority is not None:
            found.append(SuggestedException(key, priority))
    return tuple(found)


def _actions(raw: object, reader: DefinitionReader) -> tuple[TicketAction, ...]:
    """Read the ticket actions: a known kind with a value that suits it, each once."""
    found: list[TicketAction] = []
    for i, item in enumerate(reader.items(raw, "actions")):
        path = f"actions[{i}]"
        fields = reader.fields(item, path, required=("kind", "value"))
        if fields is None or "kind" not in fields or "value" not in fields:
            continue
        kind_name, value = fields["kind"], fields["value"]
        if not isinstance(kind_name, str) or kind_name not in tuple(ActionKind):
            reader.error(f"{path}.kind", "expected one of " + ", ".join(ActionKind))
            continue
        kind = ActionKind(kind_name)
        if kind is ActionKind.RAISE_PRIORITY and value not in TICKET_PRIORITIES:
            reader.error(f"{path}.value", "expected one of " + ", ".join(TICKET_PRIORITIES))
            continue
        if kind is ActionKind.ADD_TAG:
            value = reader.text(value, f"{path}.value", max_length=80, shape=TAG)
        elif kind is ActionKind.ROUTE_TO_GROUP:
            value = reader.text(value, f"{path}.value", max_length=NAME_MAX_LENGTH)
        if not isinstance(value, str):
            continue
        action = TicketAction(kind, value)
        if action in found:
            reader.error(f"{path}", f"{action.describe()} is listed twice")
        else:
            found.append(action)
    return tuple(found)


def _cap(raw: object, reader: DefinitionReader) -> Cap | None:
    """Read `{"times": 1, "days": 90}`."""
    fields = reader.fields(raw, "cap", required=("times", "days"))
    if fields is None:
        return None
    times = reader.integer(fields.get("times"), "cap.times", minimum=1, maximum=MAX_CAP_TIMES)
    days = reader.integer(fields.get("days"), "cap.days", minimum=1, maximum=MAX_CAP_DAYS)
    return None if times is None or days is None else Cap(times, days)
