"""Holdouts: which of a ticket's suggestions a rule holds back to measure its effect, and the
record of every eligible ticket, shown or held out, that the effects report compares.

No Flask here. `split_held_out` is called by `suggestions_for`; the card's view records what it
returns (`ExposureRecords`, after the answer, on a worker thread) when the ticket came from the
helpdesk, not from the agent's page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.domain.effects import is_held_out
from plugin.domain.rule_evaluation import Suggestion
from plugin.domain.rules import Rule
from plugin.models import RuleExposure
from plugin.sidebar.writes_apart import Sessions, Start, WritesApart, at_once

# How long a process remembers that a ticket's exposure is recorded (and how many it keeps):
# views within it ask nothing of the database; a view after it asks once again, which also
# writes again what a customer's erasure took meanwhile.
REMEMBERED_SECONDS = 600
REMEMBERED_MAX = 50_000


@dataclass(frozen=True)
class Exposure:
    """One rule's suggestion on one ticket: shown, or held out from this customer."""

    rule_id: int
    rule_version: int
    exception_key: str
    cost_cents: int
    held_out: bool


@dataclass(frozen=True)
class TicketExposures:
    """What to record for a ticket: who it is about and each rule's suggestion."""

    requester_id: str
    customer_id: int | None
    segment: str
    exposures: tuple[Exposure, ...]


def customer_key(customer_id: int | None, requester_id: str) -> str:
    """Who a holdout is drawn for: the customer, or the requester of someone not one yet."""
    return f"customer:{customer_id}" if customer_id is not None else f"requester:{requester_id}"


def split_held_out(
    installation_id: int,
    suggestions: Iterable[Suggestion],
    *,
    rules: Mapping[str, Rule],
    rule_ids: Mapping[str, int],
    who: str,
) -> tuple[tuple[Suggestion, ...], tuple[Exposure, ...]]:
    """The suggestions to show, ranked again from 1, and an exposure for each suggestion.

    A suggestion is held out when the rule that made it (the best-ranked one) holds this
    customer out; one customer stays in one group (`plugin.domain.effects.is_held_out`).
    """
    shown: list[Suggestion] = []
    exposures: list[Exposure] = []
    for suggestion in suggestions:
        rule = rules.get(suggestion.rule.id)
        rule_id = rule_ids.get(suggestion.rule.id)
        held = rule is not None and is_held_out(
            installation_id, suggestion.rule.id, who, rule.holdout_percent
        )
        if rule_id is not None and all(e.rule_id != rule_id for e in exposures):
            exposures.append(
                Exposure(
                    rule_id,
                    suggestion.rule.version,
                    suggestion.exception.key,
                    suggestion.cost_cents,
                    held,
                )
            )
        if not held:
            shown.append(replace(suggestion, rank=len(shown) + 1))
    return tuple(shown), tuple(exposures)


def record_exposures(
    session: Session,
    installation_id: int,
    *,
    ticket_id: str,
    found: TicketExposures,
    now: datetime,
) -> None:
    """Record the ticket's exposures not recorded yet (once per ticket and rule), and commit.

    The first record stands: a later view of the same ticket (with another customer history)
    does not move it from one group to the other.
    """
    if not found.exposures:
        return
    recorded = set(
        session.scalars(
            sa.select(RuleExposure.rule_id).where(
                RuleExposure.installation_id == installation_id,
                RuleExposure.ticket_id == ticket_id,
            )
        )
    )
    new = [e for e in found.exposures if e.rule_id not in recorded]
    if not new:
        return
    session.add_all(
        RuleExposure(
            installation_id=installation_id,
            ticket_id=ticket_id,
            rule_id=exposure.rule_id,
            rule_version=exposure.rule_version,
            requester_id=found.requester_id,
            customer_id=found.customer_id,
            segment=found.segment,
            held_out=exposure.held_out,
            exception_key=exposure.exception_key,
            cost_cents=exposure.cost_cents,
            seen_at=now,
        )
        for exposure in new
    )
    try:
        session.commit()
    except IntegrityError:
        # Two views of the ticket at once: the other recorded it first.
        session.rollback()


class ExposureRecords:
    """Each ticket's exposures, recorded once, after the view's answer, on a worker thread.

    A card with rules that hold customers out recorded its ticket's exposures on every view,
    in the view: a SELECT of what was recorded, and on a first view an INSERT and its commit,
    which the agent waited for (an event's ticket's first view most of all). Here the process
    remembers what it recorded (`REMEMBERED_SECONDS`): a later view of the ticket writes
    nothing and asks nothing, and a new exposure is written by `writes` once the answer is made
    (`start`), in a session from `sessions` (commits that need not wait for the disk: a power
    cut may lose the last moments', and the ticket's next view records them again, in the same
    group, as a customer's group is drawn from who they are). A write that fails is forgotten
    here, so that the ticket's next view tries again. Without `writes` (tests, scripts) the
    exposures are written at once.
    """

    def __init__(self, sessions: Sessions, writes: WritesApart | None = None) -> None:
        self._sessions = sessions
        self._writes = writes
        self._lock = threading.Lock()
        self._recorded: TTLCache[tuple[int, str, int], bool] = TTLCache(
            maxsize=REMEMBERED_MAX, ttl=REMEMBERED_SECONDS
        )

    def record(
        self,
        installation_id: int,
        *,
        ticket_id: str,
        found: TicketExposures,
        now: datetime,
        start: Start = at_once,
    ) -> None:
        """Record the ticket's exposures this process has not recorded yet; see the class."""
        keys = {e.rule_id: (installation_id, ticket_id, e.rule_id) for e in found.exposures}
        with self._lock:
            new = [e for e in found.exposures if keys[e.rule_id] not in self._recorded]
            for exposure in new:
                self._recorded[keys[exposure.rule_id]] = True
        if not new:
            return
        unrecorded = replace(found, exposures=tuple(new))

        def write(session: Session) -> None:
            record_exposures(
                session, installation_id, ticket_id=ticket_id, found=unrecorded, now=now
            )

        def failed() -> None:
            with self._lock:
                for exposure in new:
                    self._recorded.pop(keys[exposure.rule_id], None)

        if self._writes is None:
            try:
                with self._sessions() as session:
                    write(session)
            except Exception:
                failed()
                raise
            return
        writes, sessions = self._writes, self._sessions

        def submit() -> None:
            writes.submit(sessions, write, what="a rule's exposure", failed=failed)

        start(submit)
