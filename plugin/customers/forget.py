"""Forget a customer on request: remove what the service holds about them, keep the counts.

`forget_customer` finds an installation's customers by the company's customer id, an email or
a phone number, and in one transaction removes them with their orders, facts and segments;
deletes the cached helpdesk answers that carry them; blanks the personal fields of the tickets
the sidebar saw for them and of the actions taken for them (the outbox builds a note from its
action when it sends it, so an unsent note loses them too); and writes a `DataErasure` audit
row that holds no personal data. Action rows stay, anonymous, so budgets, caps and reports
still add up. The caller commits, then drops the process's in-memory copies
(`drop_cached_answers`). A helpdesk's user deletion event calls the same function.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Hashable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.records import normalize_email
from plugin.domain.phones import phone_key_or_none
from plugin.helpdesks import demo
from plugin.models import (
    AccountReview,
    Action,
    Base,
    Customer,
    CustomerFact,
    CustomerSegment,
    DataErasure,
    Delivery,
    DemoNote,
    DemoShopState,
    DemoTicket,
    DemoUser,
    Installation,
    Order,
    RuleExposure,
    SeenTicket,
    SharedCacheEntry,
)
from plugin.sidebar.read_cache import GENERATIONS

if TYPE_CHECKING:
    from plugin.sidebar.upstream import UpstreamCache

# What a forgotten requester's id becomes in the rows that stay: the same for all of one
# erasure's rows (a repeat contact still counts as one person), tied to nobody.
PSEUDONYM_PREFIX = "forgotten-"


class IdentifierKind(StrEnum):
    COMPANY_ID = "company_id"
    EMAIL = "email"
    PHONE = "phone"


_IDENTIFYING_COLUMNS = {
    IdentifierKind.COMPANY_ID: Customer.external_id,
    IdentifierKind.EMAIL: Customer.email,
    IdentifierKind.PHONE: Customer.phone,
}


class NothingToForget(LookupError):
    """No identifier was given (or it is empty once normalized)."""


@dataclass(frozen=True)
class Identifier:
    """What the request names the customer by, normalized as the customer rows store it."""

    kind: IdentifierKind
    value: str

    @classmethod
    def of(cls, kind: IdentifierKind | str, raw: str, *, phone_region: str) -> Identifier:
        """The identifier as stored: a phone read in the installation's `phone_region`."""
        kind = IdentifierKind(kind)
        match kind:
            case IdentifierKind.EMAIL:
                value = normalize_email(raw)
            case IdentifierKind.PHONE:
                # A stored number the re-keying left as it was (not a number in the
                # region) is still found by its exact text: erasure must not miss it.
                value = phone_key_or_none(raw, phone_region) or raw.strip()
            case _:
                value = raw.strip()
        if not value:
            raise NothingToForget(f"No {kind.value.replace('_', ' ')} was given.")
        return cls(kind, value)


@dataclass
class Forgotten:
    """What one erasure did, by kind of row; `erasure_id` names its audit row."""

    erasure_id: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def customers(self) -> int:
        return self.counts.get("customers", 0)

    def summary(self) -> str:
        touched = ", ".join(
            f"{name.replace('_', ' ')}: {n}" for name, n in self.counts.items() if n
        )
        return f"Forgotten (audit record {self.erasure_id}). {touched or 'Nothing was held.'}"


def identifier_hash(identifier: Identifier, *, key: str) -> str:
    """The audit's one-way hash of an identifier: HMAC-SHA256 under the service's secret key,
    so an address can be checked against the audit but not guessed from it by a dictionary."""
    message = f"{identifier.kind.value}:{identifier.value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def forget_customer(
    session: Session,
    installation: Installation,
    identifier: Identifier,
    *,
    requested_by: str,
    via: str,
    audit_key: str,
    now: datetime,
) -> Forgotten:
    """Forget the installation's customers `identifier` names, everywhere the service keeps
    them (see the module's docstring); the caller commits and then `drop_cached_answers`.

    Scoped to `installation`: another installation's customer with the same email is untouched.
    """
    erasure = DataErasure(
        installation_id=installation.id,
        via=via,
        requested_by=requested_by[:255],
        identifier_kind=identifier.kind.value,
        identifier_hash=identifier_hash(identifier, key=audit_key),
        counts={},
        created_at=now,
    )
    session.add(erasure)
    session.flush()
    person = _Person.find(session, installation, identifier)
    counts: dict[str, int] = {}
    counts["cached_answers"] = _delete_cached_answers(session, installation.id, person)
    customer_ids = sorted(person.customer_ids)
    pseudonym = f"{PSEUDONYM_PREFIX}{erasure.id}"
    counts["actions"] = _anonymize_actions(session, installation.id, person, pseudonym)
    counts["seen_tickets"] = _update(
        session,
        SeenTicket,
        installation.id,
        person,
        {"requester_id": pseudonym, "customer_id": None, "subject": ""},
    )
    # The effects report keeps its counts: the exposures lose whom they were about.
    counts["rule_exposures"] = _update(
        session,
        RuleExposure,
        installation.id,
        person,
        {"requester_id": pseudonym, "customer_id": None},
    )
    counts["account_reviews"] = _update(
        session,
        AccountReview,
        installation.id,
        person,
        {"requester_id": pseudonym, "customer_id": None},
    )
    for name, model in (
        ("orders", Order),
        ("facts", CustomerFact),
        ("segments", CustomerSegment),
    ):
        counts[name] = _count_deleted(
            session.execute(
                sa.delete(model).where(
                    model.installation_id == installation.id,
                    model.customer_id.in_(customer_ids),
                )
            )
        )
    counts["customers"] = _count_deleted(
        session.execute(
            sa.delete(Customer).where(
                Customer.installation_id == installation.id, Customer.id.in_(customer_ids)
            )
        )
    )
    if installation.platform == demo.PLATFORM:
        counts.update(_forget_in_demo_helpdesk(session, installation.id, person))
    if customer_ids:
        # The demo's fake shop is stocked from the customers: restocked on its next use.
        session.execute(
            sa.delete(DemoShopState).where(DemoShopState.installation_id == installation.id)
        )
    erasure.counts = counts
    session.flush()
    GENERATIONS.bump(installation.id)
    return Forgotten(erasure_id=erasure.id, counts=counts)


def matching_customers(
    session: Session, installation: Installation, identifier: Identifier
) -> list[Customer]:
    """The installation's customers the identifier names (what a confirmation shows)."""
    column = _IDENTIFYING_COLUMNS[identifier.kind]
    return list(
        session.scalars(
            sa.select(Customer)
            .where(Customer.installation_id == installation.id, column == identifier.value)
            .order_by(Customer.id)
        )
    )


def drop_cached_answers(
    cache: UpstreamCache,
    installation_id: int,
    *,
    synced: MutableMapping[Hashable, datetime] | None = None,
) -> int:
    """Drop this process's in-memory helpdesk and shop answers of the installation (they may
    carry the forgotten customer), and its record of which shop answers it stored (keyed by
    email). They are fetched again on the next views. Returns how many answers were dropped."""
    dropped = cache.drop_installation(installation_id)
    if synced is not None:
        for key in list(synced):
            if isinstance(key, tuple) and key and key[0] == installation_id:
                synced.pop(key, None)
    GENERATIONS.bump(installation_id)
    return dropped


@dataclass
class _Person:
    """Everything that identifies the person in the installation's rows."""

    customer_ids: set[int] = field(default_factory=set)
    requester_ids: set[str] = field(default_factory=set)
    # Lowercased emails, phones and names, to find them in cached JSON.
    needles: set[str] = field(default_factory=set)

    @classmethod
    def find(cls, session: Session, installation: Installation, identifier: Identifier) -> _Person:
        person = cls()
        if identifier.kind is not IdentifierKind.COMPANY_ID:
            person.needles.add(identifier.value.lower())
        for customer in matching_customers(session, installation, identifier):
            person.customer_ids.add(customer.id)
            person.add_needles(customer.email, customer.phone, customer.name)
            if customer.helpdesk_user_id:
                person.requester_ids.add(customer.helpdesk_user_id)
        if person.customer_ids:
            ids = sorted(person.customer_ids)
            for model in (SeenTicket, Action, AccountReview):
                person.requester_ids.update(
                    session.scalars(
                        sa.select(model.requester_id)
                        .where(model.installation_id == installation.id)
                        .where(model.customer_id.in_(ids))
                        .distinct()
                    )
                )
        if installation.platform == demo.PLATFORM:
            person.add_demo_users(session, installation.id)
        return person

    def add_needles(self, *values: str | None) -> None:
        self.needles.update(value.strip().lower() for value in values if value and value.strip())

    def add_demo_users(self, session: Session, installation_id: int) -> None:
        """The demo helpdesk's own end user for the person, by id, email or phone."""
        emails = [n for n in self.needles if "@" in n]
        phones = [n for n in self.needles if n.startswith("+") or n.isdigit()]
        conditions = [DemoUser.external_id.in_(sorted(self.requester_ids))]
        if emails:
            conditions.append(sa.func.lower(DemoUser.email).in_(emails))
        if phones:
            conditions.append(DemoUser.phone.in_(phones))
        for user in session.scalars(
            sa.select(DemoUser).where(
                DemoUser.installation_id == installation_id,
                DemoUser.role == "end-user",
                sa.or_(*conditions),
            )
        ):
            self.requester_ids.add(user.external_id)
            self.add_needles(user.email, user.phone, user.name)

    def carried_by(self, key: str, value: object) -> bool:
        """Whether a cached answer is about the person: by its key, or by what it holds."""
        if any(key.endswith(f":{requester}") for requester in self.requester_ids):
            return True
        text = json.dumps(value, ensure_ascii=False, default=str).lower()
        return any(needle in text for needle in self.needles)

    def rows_of(
        self, model: type[SeenTicket] | type[Action] | type[AccountReview] | type[RuleExposure]
    ) -> sa.ColumnElement[bool]:
        conditions = []
        if self.customer_ids:
            conditions.append(model.customer_id.in_(sorted(self.customer_ids)))
        if self.requester_ids:
            conditions.append(model.requester_id.in_(sorted(self.requester_ids)))
        return sa.or_(*conditions) if conditions else sa.false()


def _delete_cached_answers(session: Session, installation_id: int, person: _Person) -> int:
    """Delete the shared cache's answers about the person. They are read here one by one: an
    erasure is rare, and only what the JSON holds says whether it carries them. The requesters
    they name join `person`, so the rows of the same requester are found next."""
    doomed: list[int] = []
    for entry_id, key, value in session.execute(
        sa.select(SharedCacheEntry.id, SharedCacheEntry.key, SharedCacheEntry.value).where(
            SharedCacheEntry.installation_id == installation_id
        )
    ):
        if person.carried_by(key, value):
            doomed.append(entry_id)
            requester = _requester_of(value)
            if requester:
                person.requester_ids.add(requester)
    if not doomed:
        return 0
    session.execute(sa.delete(SharedCacheEntry).where(SharedCacheEntry.id.in_(doomed)))
    return len(doomed)


def _requester_of(value: object) -> str | None:
    """The requester id of a cached requester read (`plugin.sidebar.snapshot.REQUESTER_CODEC`)."""
    requester = value.get("requester") if isinstance(value, dict) else None
    found = requester.get("id") if isinstance(requester, dict) else None
    return str(found) if isinstance(found, str | int) else None


def _anonymize_actions(
    session: Session, installation_id: int, person: _Person, pseudonym: str
) -> int:
    """Blank the actions' personal fields (the agent's words may name the customer), keeping
    kind, amount, budget, rule and dates; and what an unsent gesture would tell the shop."""
    where = (Action.installation_id == installation_id, person.rows_of(Action))
    action_ids = list(session.scalars(sa.select(Action.id).where(*where)))
    if not action_ids:
        return 0
    session.execute(
        sa.update(Action)
        .where(Action.id.in_(action_ids))
        .values(requester_id=pseudonym, customer_id=None, text="")
    )
    session.execute(
        sa.update(Delivery)
        .where(Delivery.installation_id == installation_id, Delivery.action_id.in_(action_ids))
        .values(last_error=None)
    )
    gestures = Base.metadata.tables.get("gestures")
    if gestures is not None:  # the shop gestures' table (issue 18), where it exists
        session.execute(
            sa.update(gestures)
            .where(
                gestures.c.installation_id == installation_id,
                gestures.c.request_action_id.in_(action_ids),
            )
            .values(reason="")
        )
    return len(action_ids)


def _update(
    session: Session,
    model: type[SeenTicket] | type[AccountReview] | type[RuleExposure],
    installation_id: int,
    person: _Person,
    values: dict[str, object],
) -> int:
    result = session.execute(
        sa.update(model)
        .where(model.installation_id == installation_id, person.rows_of(model))
        .values(**values)
    )
    return _count_deleted(result)


def _forget_in_demo_helpdesk(
    session: Session, installation_id: int, person: _Person
) -> dict[str, int]:
    """The demo helpdesk stands in for the helpdesk's own storage: its user, their tickets and
    the notes on them go too (as a real helpdesk's deletion of the user would take them)."""
    requesters = sorted(person.requester_ids)
    tickets = list(
        session.scalars(
            sa.select(DemoTicket.external_id).where(
                DemoTicket.installation_id == installation_id,
                DemoTicket.requester_id.in_(requesters),
            )
        )
    )
    session.execute(
        sa.delete(DemoNote).where(
            DemoNote.installation_id == installation_id, DemoNote.ticket_id.in_(tickets)
        )
    )
    session.execute(
        sa.delete(DemoTicket).where(
            DemoTicket.installation_id == installation_id, DemoTicket.external_id.in_(tickets)
        )
    )
    users = _count_deleted(
        session.execute(
            sa.delete(DemoUser).where(
                DemoUser.installation_id == installation_id,
                DemoUser.role == "end-user",
                DemoUser.external_id.in_(requesters),
            )
        )
    )
    return {"demo_tickets": len(tickets), "demo_users": users}


def _count_deleted(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def erasures_after(session: Session, erasure_id: int) -> list[tuple[int, int]]:
    """(erasure id, installation id) of the erasures after `erasure_id`, oldest first: what a
    process that last looked at `erasure_id` has not dropped its cached answers for yet."""
    return [
        (found, installation_id)
        for found, installation_id in session.execute(
            sa.select(DataErasure.id, DataErasure.installation_id)
            .where(DataErasure.id > erasure_id)
            .order_by(DataErasure.id)
        )
    ]


def latest_erasure(session: Session) -> int:
    """The newest erasure's id (0 when there is none)."""
    return int(session.scalar(sa.select(sa.func.max(DataErasure.id))) or 0)


def erasures(session: Session, installation_id: int, *, limit: int = 20) -> Iterable[DataErasure]:
    """The installation's latest erasures, newest first (for the console)."""
    return session.scalars(
        sa.select(DataErasure)
        .where(DataErasure.installation_id == installation_id)
        .order_by(DataErasure.id.desc())
        .limit(limit)
    ).all()
