"""What an action says on its ticket: the internal note's text, its tags and its marker.

The outbox (`plugin/delivery/outbox.py`) sends the actions in the action log as notes: one
action's, or several taken on a ticket close together gathered into one (`build_gathered_note`).
A note is for the agents who open the ticket later: what was done, why, by whom, for how much,
and when, with rules named as supervisors named them. Each action's last line is its reference:
its marker, a string made from its idempotency key (after the rule's key and version). The note's
marker is its first action's, which the outbox looks for on the ticket before sending again
after an unknown outcome.

Exception kinds (applied, dismissed, escalated, approved, refused, and handled: a rule's
ticket handling) are described by the goodwill action log's own `describe_action`. Other kinds
register a sentence with `register_note_sentence`; a kind nobody registered still gets a
readable generic sentence. A handled action's note also carries the change to make to the
ticket: a priority to raise it to or a group to route it to, or one more tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.exceptions import ExceptionType
from plugin.domain.masking import scrub_text
from plugin.domain.rules import ActionKind as HandlingKind
from plugin.gestures.planning import GestureStatus
from plugin.gestures.words import gesture_of, note_line
from plugin.goodwill.action_log import ActionKind, describe_action, handling_of
from plugin.goodwill.money import exact_money
from plugin.goodwill.rulebook import rule_book
from plugin.helpdesks import demo
from plugin.helpdesks.interface import TicketChange
from plugin.masking.settings import note_mask
from plugin.models import Action, DemoUser, Installation, Rule, RuleVersion

# Every delivered note's ticket gets this tag, and one per kind: regulars_applied, ...
TAG = "regulars"
MARKER_PREFIX = "regulars-action-"
EXCEPTION_KINDS = frozenset(kind.value for kind in ActionKind)
# A helpdesk note is not the place for an essay: the agent's own words are cut at this length.
MAX_AGENT_TEXT = 600

# Given the session and the action, say in one sentence what was done.
NoteSentence = Callable[[Session, Action], str]
_sentences: dict[str, NoteSentence] = {}
_TAG_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class Note:
    """One action as the helpdesk receives it."""

    body: str
    tags: list[str]
    marker: str
    # What a handled action changes on the ticket besides its tags; None for other actions.
    change: TicketChange | None = None


def register_note_sentence(kinds: Iterable[str], sentence: NoteSentence) -> None:
    """Say how the notes of these action kinds begin (the review checklists' kinds, say).

    `sentence(session, action)` returns one line, such as "Review completed: Full account
    review (5 of 5 items)." The rest of the note (who, when, the agent's text, the marker) is
    added here, the same for every kind. Exception kinds are described by the exceptions
    service and cannot be replaced.
    """
    for kind in kinds:
        if kind in EXCEPTION_KINDS:
            raise ValueError(f"{kind!r} is an exception kind, described by the exceptions service")
        _sentences[kind] = sentence


def marker_for(action: Action) -> str:
    """The string that identifies this action's note on its ticket."""
    return f"{MARKER_PREFIX}{action.idempotency_key}"


def tags_for(action: Action) -> list[str]:
    """`regulars` and `regulars_<kind>`, in the character set helpdesk tags allow."""
    kind = _TAG_UNSAFE.sub("_", action.kind.lower()).strip("_") or "action"
    return [TAG, f"{TAG}_{kind}"]


def build_note(session: Session, installation: Installation, action: Action) -> Note:
    """Write the note for an action: the sentence, then the details a reader asks next."""
    catalog: Mapping[str, ExceptionType] = {}
    if action.kind in EXCEPTION_KINDS:
        catalog = rule_book(session, installation).catalog
        headline = describe_action(action, catalog)
    elif action.kind in _sentences:
        headline = _sentences[action.kind](session, action)
    else:
        headline = _generic_sentence(action)
    lines = [f"Regulars · {headline}"]
    gesture = gesture_of(session, installation.id, action.id)
    # An escalation's note speaks of its gesture only while it waits for the decision.
    said = (
        note_line(gesture)
        if gesture is not None
        and (gesture.action_id == action.id or gesture.status == GestureStatus.WAITING_APPROVAL)
        else None
    )
    if said:
        lines.append(said)
    entry = catalog.get(action.exception_key)
    if action.amount_cents is not None and action.kind not in EXCEPTION_KINDS:
        lines.append(f"Amount: {exact_money(action.amount_cents, action.currency)}")
    reason = _reason_label(entry, action.reason_code)
    if reason:
        lines.append(f"Reason: {reason}")
    # Everyone who opens the ticket reads the note: the agent's words get the strictest mask
    # of any role (docs/privacy.md), with the emails, phones and amounts it hides taken out.
    text = scrub_text(" ".join(action.text.split()), note_mask(session, installation.id))
    if text:
        if len(text) > MAX_AGENT_TEXT:
            text = text[: MAX_AGENT_TEXT - 1].rstrip() + "…"
        lines.append(f"In their words: “{text}”")
    who = _who(session, installation, action.agent_id)
    if action.agent_verified is False:
        who += " (agent not verified)"
    lines.append(f"By: {who}")
    rule = _rule_names(session, action)
    if rule is not None:
        lines.append(f"Suggested by rule: {rule[0]}")
    lines.append(f"When: {action.created_at:%Y-%m-%d %H:%M} UTC")
    if rule is not None:
        lines.append(f"Rule ref: {rule[1]}")
    lines.append(f"Ref: {marker_for(action)}")  # last, where the helpdesk writers expect it
    tags, change = tags_for(action), None
    handling = handling_of(action)
    if handling is not None:
        match handling.kind:
            case HandlingKind.RAISE_PRIORITY:
                change = TicketChange(priority=handling.value)
            case HandlingKind.ROUTE_TO_GROUP:
                change = TicketChange(group=handling.value)
            case _:
                tags.append(handling.value)
    return Note(body="\n".join(lines), tags=tags, marker=marker_for(action), change=change)


def build_gathered_note(
    session: Session, installation: Installation, actions: Sequence[Action]
) -> Note:
    """One note for a ticket's actions taken close together, the first one's marker its own.

    Each action keeps its own lines (and its reference line) under one heading; the tags are
    all of theirs, and the ticket changes of handled actions are made together.
    """
    if not actions:
        raise ValueError("a note carries at least one action")
    notes = [build_note(session, installation, action) for action in actions]
    if len(notes) == 1:
        return notes[0]
    blocks = [note.body.removeprefix("Regulars · ") for note in notes]
    body = f"Regulars · {len(notes)} actions on this ticket\n\n" + "\n\n".join(
        f"{number}. {block}" for number, block in enumerate(blocks, start=1)
    )
    tags = list(dict.fromkeys(tag for note in notes for tag in note.tags))
    changes = [note.change for note in notes if note.change is not None]
    change = None
    if changes:
        change = TicketChange(
            priority=next((c.priority for c in reversed(changes) if c.priority), None),
            group=next((c.group for c in reversed(changes) if c.group), None),
        )
    return Note(body=body, tags=tags, marker=notes[0].marker, change=change)


def _generic_sentence(action: Action) -> str:
    """A kind the note builder does not know yet: name it in words, and what it was about."""
    what = action.kind.replace("_", " ").strip().capitalize() or "Action"
    about = action.exception_key.replace("_", " ").strip()
    return f"{what}: {about}." if about else f"{what}."


def _reason_label(entry: ExceptionType | None, code: str | None) -> str | None:
    if not code:
        return None
    if entry is not None:
        for reason in (*entry.apply_reasons, *entry.dismiss_reasons):
            if reason.code == code:
                return reason.label
    return code.replace("_", " ")


def _who(session: Session, installation: Installation, agent_id: str | None) -> str:
    """The agent by name where the service knows it (the demo's users), else by helpdesk id."""
    if agent_id is None:
        return "Regulars (no agent recorded)"
    if installation.platform == demo.PLATFORM:
        name = session.scalar(
            sa.select(DemoUser.name).where(
                DemoUser.installation_id == installation.id, DemoUser.external_id == agent_id
            )
        )
        if name:
            return f"{name} (user {agent_id})"
    return f"agent user {agent_id}"


def _rule_names(session: Session, action: Action) -> tuple[str, str] | None:
    """The rule as supervisors named it, and its key and version for the reference line."""
    if action.rule_id is None:
        return None
    key = session.scalar(
        sa.select(Rule.key).where(
            Rule.installation_id == action.installation_id, Rule.id == action.rule_id
        )
    )
    if key is None:
        return None
    if not action.rule_version:
        return key, key
    definition = session.scalar(
        sa.select(RuleVersion.definition).where(
            RuleVersion.installation_id == action.installation_id,
            RuleVersion.rule_id == action.rule_id,
            RuleVersion.version == action.rule_version,
        )
    )
    name = definition.get("name") if isinstance(definition, dict) else None
    human = name.strip() if isinstance(name, str) and name.strip() else key
    return human, f"{key} v{action.rule_version}"
